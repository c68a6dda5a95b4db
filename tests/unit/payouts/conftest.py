"""Fixtures for the payouts unit tests, and an independent decoder for the transactions they build.

bitcoinlib writes its data directory on import, so it is pointed at a temporary one before any test
module imports it. Every built transaction is checked with embit, a library that shares no code with
bitcoinlib: parsing, txid, sighash (BIP143) and ECDSA verification, so a test never trusts the code
that built the transaction.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

_BCL_DIR = tempfile.mkdtemp(prefix="cq-bitcoinlib-")
os.environ["BCL_DATA_DIR"] = _BCL_DIR
atexit.register(shutil.rmtree, _BCL_DIR, True)

import pytest  # noqa: E402
from embit import bech32 as embit_bech32  # noqa: E402
from embit.base58 import encode_check  # noqa: E402
from embit.ec import PrivateKey, PublicKey, Signature  # noqa: E402
from embit.script import address_to_scriptpubkey, p2pkh, p2wpkh  # noqa: E402
from embit.transaction import Transaction as EmbitTransaction  # noqa: E402

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TEST_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])  # the BIP39 test vector; never a real wallet


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def blt_addresses(seed: int) -> dict[str, str]:
    """One bitcoinlib_test address of each output type, encoded with embit (not with the code under test)."""
    key = PrivateKey(hashlib.sha256(f"payee-{seed}".encode()).digest()).get_public_key()
    h160 = _hash160(key.sec())
    h256 = hashlib.sha256(key.sec()).digest()
    return {
        "p2wpkh": embit_bech32.encode("blt", 0, h160),
        "p2wsh": embit_bech32.encode("blt", 0, h256),
        "p2tr": embit_bech32.encode("blt", 1, key.xonly()),
        "p2pkh": encode_check(bytes([0x90]) + h160),
        "p2sh": encode_check(bytes([0x95]) + h160),
    }


def script_of(address: str) -> bytes:
    """The locking script an address stands for, decoded by embit (base58 versions given explicitly)."""
    if address.startswith("blt1") or address.startswith("bc1") or address.startswith("tb1"):
        return address_to_scriptpubkey(address).data
    from embit.base58 import decode_check

    payload = decode_check(address)
    version, digest = payload[0], payload[1:]
    if version in (0x90, 0x00, 0x6F):
        return p2pkh_script(digest)
    return b"\xa9\x14" + digest + b"\x87"


def _der_s(der: bytes) -> int:
    assert der[0] == 0x30 and der[1] == len(der) - 2 and der[2] == 0x02, "not a strict DER signature"
    r_len = der[3]
    assert der[4 + r_len] == 0x02
    s_len = der[5 + r_len]
    return int.from_bytes(der[6 + r_len : 6 + r_len + s_len], "big")


def p2pkh_script(digest: bytes) -> bytes:
    return b"\x76\xa9\x14" + digest + b"\x88\xac"


@dataclass(frozen=True)
class Decoded:
    txid: str
    vsize: int
    fee: int
    outputs: list[tuple[bytes, int]]
    outpoints: list[tuple[str, int]]
    sequences: list[int]


def verify_independently(raw_hex: str, prevouts: dict[tuple[str, int], tuple[int, str]]) -> Decoded:
    """Decode ``raw_hex`` with embit and check every input's signature against the coin it spends.

    ``prevouts`` maps (txid, vout) to (value, address) of the coins as the wallet database recorded them
    when they were funded. Returns what the transaction really does, for the test to compare.
    """
    raw = bytes.fromhex(raw_hex)
    tx = EmbitTransaction.parse(raw)
    assert tx.serialize() == raw, "embit re-serializes the transaction differently"
    input_total = 0
    for index, vin in enumerate(tx.vin):
        outpoint = (vin.txid.hex(), vin.vout)
        assert outpoint in prevouts, f"input {index} spends unknown coin {outpoint}"
        value, address = prevouts[outpoint]
        input_total += value
        assert len(vin.script_sig.data) == 0, "a native segwit input has an empty scriptSig"
        sig_bytes, pub_bytes = vin.witness.items
        pub = PublicKey.parse(pub_bytes)
        assert p2wpkh(pub).data == address_to_scriptpubkey(address).data, "witness key does not own the coin"
        assert sig_bytes[-1] == 0x01, "SIGHASH_ALL expected"
        digest = tx.sighash_segwit(index, p2pkh(pub), value, sighash=sig_bytes[-1])
        signature = Signature.parse(sig_bytes[:-1])
        assert pub.verify(signature, digest), f"signature of input {index} does not verify"
        assert _der_s(sig_bytes[:-1]) <= SECP256K1_N // 2, "high-S signature is not standard (BIP62/146)"
    witness_bytes = sum(len(vin.witness.serialize()) for vin in tx.vin)
    stripped = len(raw) - 2 - witness_bytes
    weight = stripped * 4 + (len(raw) - stripped)
    outputs = [(vout.script_pubkey.data, vout.value) for vout in tx.vout]
    return Decoded(
        txid=tx.txid().hex(),
        vsize=-(-weight // 4),
        fee=input_total - sum(v for _, v in outputs),
        outputs=outputs,
        outpoints=[(vin.txid.hex(), vin.vout) for vin in tx.vin],
        sequences=[vin.sequence for vin in tx.vin],
    )


def wallet_prevouts(wallet: object) -> dict[tuple[str, int], tuple[int, str]]:
    """Coins as bitcoinlib's wallet database lists them (spent or not), for ``verify_independently``."""
    from bitcoinlib.db import DbTransaction, DbTransactionOutput

    inner = wallet._wallet  # type: ignore[attr-defined]
    rows = (
        inner.session.query(DbTransactionOutput, DbTransaction)
        .join(DbTransaction)
        .filter(DbTransaction.wallet_id == inner.wallet_id)
        .all()
    )
    return {(t.txid.hex(), o.output_n): (o.value, o.address) for o, t in rows}


@pytest.fixture
def wallet_factory(tmp_path) -> Iterator:
    """Make funded bitcoinlib_test wallets in SQLite files under the test's tmp dir."""
    from services.payouts.bitcoin import PayoutWallet

    made = []

    def make(secret: str = TEST_MNEMONIC, *, fund_addresses: int = 2, name: str = "platform", db: str = "w"):
        wallet = PayoutWallet(secret=secret, db_uri=f"sqlite:///{tmp_path / db}.sqlite", name=name)
        if fund_addresses:
            wallet.fund_test_wallet(fund_addresses)
        made.append(wallet)
        return wallet

    yield make
    for wallet in made:
        wallet.close()


class Chain:
    """The independent helpers, handed to tests as the ``chain`` fixture."""

    blt_addresses = staticmethod(blt_addresses)
    script_of = staticmethod(script_of)
    verify = staticmethod(verify_independently)
    prevouts = staticmethod(wallet_prevouts)


@pytest.fixture
def chain() -> type[Chain]:
    return Chain
