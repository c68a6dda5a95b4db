"""Queries of the payouts schema: allocations, batches, and read-only views of ledger balances."""
