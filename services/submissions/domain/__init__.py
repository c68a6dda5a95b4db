"""Pure domain of the submissions service: data, checks, originality, commitments and receipts.

Nothing here talks to gRPC or the database; the only I/O is in ``files`` (paths handed to it).
Import the modules directly (``from services.submissions.domain import checks``); each one is
small and documents why its rule is what it is.
"""
