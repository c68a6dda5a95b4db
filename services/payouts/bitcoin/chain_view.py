"""The chain's view of a payout transaction, decoded with embit, independently of the code that built it.

Reconciliation must not trust bitcoinlib (which built and signed the transaction) nor the rows the
service stored about it: the raw bytes are parsed here by a second library, the txid recomputed and
each output's address re-derived from its locking script for the network's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from embit.networks import NETWORKS as EMBIT_NETWORKS
from embit.transaction import Transaction

NETWORK_ENCODINGS: dict[str, dict[str, object]] = {
    "bitcoinlib_test": {"bech32": "blt", "p2pkh": b"\x90", "p2sh": b"\x95"},
    "mainnet": EMBIT_NETWORKS["main"],
    "testnet": EMBIT_NETWORKS["test"],
    "regtest": EMBIT_NETWORKS["regtest"],
}


@dataclass(frozen=True)
class ChainOutput:
    vout: int
    address: str
    """Re-derived from the script; empty when the script has no address form."""
    amount: int


@dataclass(frozen=True)
class ChainTransaction:
    txid: str
    outpoints: tuple[tuple[str, int], ...]
    outputs: tuple[ChainOutput, ...]

    @property
    def output_total(self) -> int:
        return sum(o.amount for o in self.outputs)


def decode(raw_hex: str, network: str) -> ChainTransaction:
    """Parse a serialized transaction; raises ValueError when the bytes are not one."""
    encoding = NETWORK_ENCODINGS[network]
    raw = bytes.fromhex(raw_hex)
    tx = Transaction.parse(raw)
    if tx.serialize() != raw:
        raise ValueError("the raw transaction has trailing or non-canonical bytes")
    outputs = []
    for index, out in enumerate(tx.vout):
        try:
            address = out.script_pubkey.address(encoding)
        except ValueError:
            address = ""
        outputs.append(ChainOutput(index, address, int(out.value)))
    return ChainTransaction(tx.txid().hex(), tuple((vin.txid.hex(), vin.vout) for vin in tx.vin), tuple(outputs))


def same_address(a: str, b: str) -> bool:
    """Bech32 addresses compare case-insensitively; base58 ones exactly."""
    if a.lower().startswith(("blt1", "bc1", "tb1", "bcrt1")):
        return a.lower() == b.lower()
    return a == b
