"""Pure domain of the submissions service: data, checks, originality, commitments and receipts.

Nothing here talks to gRPC or the database; the only I/O is in ``files`` and ``round_files``,
which read and write paths handed to them.
Import the modules directly (``from services.submissions.domain import checks``); each one is
small and documents why its rule is what it is.
"""
