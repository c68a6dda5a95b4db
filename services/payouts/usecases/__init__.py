"""Use cases of the payouts service: plain async functions and classes over the database and the peers."""
