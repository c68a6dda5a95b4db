"""Pure payout rules: allocation policies, addresses, batching, coin selection and the batch state machine.

No I/O here (no database, no gRPC, no bitcoinlib), so every rule that decides who gets how many satoshis
is tested directly and exhaustively.
"""
