"""An independent check of payout transactions: embit parses the bytes and verifies every signature.

Nothing here uses the payouts code. The coins a transaction spends come from bitcoinlib's own wallet
records (funding coins) or from the earlier payout transactions, decoded here (their change); the
caller compares what the chain says with what the ledger booked.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from embit import bech32
from embit.base58 import encode_check
from embit.ec import PublicKey, Signature
from embit.script import p2pkh, p2wpkh
from embit.transaction import Transaction

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def blt_address(script: bytes) -> str:
    """The bitcoinlib_test address of a locking script (bech32 hrp 'blt', base58 versions 0x90/0x95)."""
    if script[0] in (0, 0x51) and len(script) in (22, 34):
        return bech32.encode("blt", script[0] % 0x50, script[2:])
    if script[:3] == b"\x76\xa9\x14":
        return encode_check(b"\x90" + script[3:23])
    if script[:2] == b"\xa9\x14":
        return encode_check(b"\x95" + script[2:22])
    raise ValueError(f"no address form for script {script.hex()}")


@dataclass(frozen=True)
class Decoded:
    txid: str
    inputs: list[tuple[str, int]]
    outputs: list[tuple[str, int]]
    """(address, amount) in output order."""
    fee: int
    sequences: list[int]


def script_of(address: str) -> bytes:
    """The P2WPKH/P2WSH/P2TR locking script of a bitcoinlib_test bech32 address, decoded by embit."""
    version, program = bech32.decode("blt", address)
    return bytes([0x50 + version if version else 0, len(program)]) + bytes(program)


async def wallet_coins(database_url: str) -> dict[tuple[str, int], tuple[int, bytes]]:
    """Outputs bitcoinlib recorded for the payout wallet: (txid, vout) -> (value, locking script).

    The offline network's funding coins are stored without a script; their address says what locks them.
    """
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("""SELECT t.txid, o.output_n, o.value, o.address
                                     FROM payouts_wallet.transaction_outputs o
                                     JOIN payouts_wallet.transactions t ON t.id = o.transaction_id""")
    finally:
        await conn.close()
    return {(bytes(r["txid"]).hex(), r["output_n"]): (r["value"], script_of(r["address"])) for r in rows}


def outputs_of(raw_hex: str) -> dict[tuple[str, int], tuple[int, bytes]]:
    tx = Transaction.parse(bytes.fromhex(raw_hex))
    txid = tx.txid().hex()
    return {(txid, i): (out.value, out.script_pubkey.data) for i, out in enumerate(tx.vout)}


def _low_s(der: bytes) -> bool:
    r_len = der[3]
    s_len = der[5 + r_len]
    return int.from_bytes(der[6 + r_len : 6 + r_len + s_len], "big") <= SECP256K1_N // 2


def verify(raw_hex: str, prevouts: dict[tuple[str, int], tuple[int, bytes]]) -> Decoded:
    """Parse, check every input's signature against the coin it spends, and return what the tx does."""
    raw = bytes.fromhex(raw_hex)
    tx = Transaction.parse(raw)
    assert tx.serialize() == raw, "embit re-serializes the transaction differently"
    total_in = 0
    for index, vin in enumerate(tx.vin):
        outpoint = (vin.txid.hex(), vin.vout)
        assert outpoint in prevouts, f"input {index} spends unknown coin {outpoint}"
        value, script = prevouts[outpoint]
        total_in += value
        signature, pub_bytes = vin.witness.items
        pub = PublicKey.parse(pub_bytes)
        assert p2wpkh(pub).data == script, "the witness key does not own the coin"
        digest = tx.sighash_segwit(index, p2pkh(pub), value, sighash=signature[-1])
        assert pub.verify(Signature.parse(signature[:-1]), digest), f"signature of input {index} is invalid"
        assert _low_s(signature[:-1]), "high-S signature"
    outputs = [(blt_address(out.script_pubkey.data), out.value) for out in tx.vout]
    return Decoded(
        tx.txid().hex(),
        [(v.txid.hex(), v.vout) for v in tx.vin],
        outputs,
        total_in - sum(v for _, v in outputs),
        [v.sequence for v in tx.vin],
    )


async def only_confirmed_can_confirm(database_url: str, confirmed_raw: list[str]) -> dict[str, Decoded]:
    """Every transaction the payouts service ever signed, straight from its table, decoded and verified.

    Asserts that no two confirmed transactions spend the same coin and that every other signed one
    spends a coin a confirmed one spends (so it can never confirm and pay twice). Returns the confirmed
    ones, decoded, by txid.
    """
    conn = await asyncpg.connect(database_url)
    try:
        signed = await conn.fetch("SELECT txid, raw_tx_hex FROM payouts.batch_transactions")
    finally:
        await conn.close()
    prevouts = await wallet_coins(database_url)
    for raw in confirmed_raw:
        prevouts.update(outputs_of(raw))
    decoded = {row["txid"]: verify(row["raw_tx_hex"], prevouts) for row in signed}
    final = {Transaction.parse(bytes.fromhex(raw)).txid().hex() for raw in confirmed_raw}
    spent = [o for txid in final for o in decoded[txid].inputs]
    assert len(spent) == len(set(spent)), "two confirmed transactions spend the same coin"
    for txid, tx in decoded.items():
        assert txid in final or set(tx.inputs) & set(spent), f"{txid} could still confirm: it would pay twice"
    return {txid: decoded[txid] for txid in final}
