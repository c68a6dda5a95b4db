"""Bitcoin for payouts: the platform wallet and batch transactions, built and signed with bitcoinlib.

Importing bitcoinlib creates its data directory (``$BCL_DATA_DIR``, default ``~/.bitcoinlib``) and log
file; set ``BCL_DATA_DIR`` to a writable data folder before importing this package in a read-only
container. Address checks need no bitcoinlib: ``validate_address`` lives in ``shared.bitcoin_address`` and is
re-exported here for convenience.
"""

from services.payouts.bitcoin.transactions import (
    PayeeOutput,
    SignedTransaction,
    SpentInput,
    TransactionFacts,
    transaction_facts,
)
from services.payouts.bitcoin.wallet import DEFAULT_WALLET_NAME, PayoutWallet
from shared.bitcoin_address import OutputType, decode_address, validate_address

__all__ = [
    "DEFAULT_WALLET_NAME",
    "OutputType",
    "PayeeOutput",
    "PayoutWallet",
    "SignedTransaction",
    "SpentInput",
    "TransactionFacts",
    "decode_address",
    "transaction_facts",
    "validate_address",
]
