"""Benchmark of batched payouts: build and sign one 1,000-payee transaction, against one-payee transactions.

    python bench/payouts.py                 # bitcoinlib_test, wallet database in a temporary SQLite file
    python bench/payouts.py --db-uri URI    # another wallet database (e.g. postgresql+psycopg2://...)

Measured in one run, offline on ``bitcoinlib_test``: the time ``PayoutWallet.build_batch`` takes to
choose coins, build and sign one transaction paying 1,000 P2WPKH outputs (plus change), and that
transaction's virtual size per payee. For comparison it builds a sample of one-payee transactions
(same wallet, same fee rate) and extrapolates their size to 1,000 payees, saying so. Every transaction
is decoded and its signatures checked with embit (independent of bitcoinlib) when embit is installed.
Goals: < 2 s to build and sign, <= 35 vB per payee (one payee per transaction costs about 140 vB).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_DATA = tempfile.TemporaryDirectory(prefix="cq-bench-payouts-")
os.environ.setdefault("BCL_DATA_DIR", _DATA.name)  # bitcoinlib writes its data folder on import

from bitcoinlib.encoding import pubkeyhash_to_addr_bech32  # noqa: E402

from services.payouts.bitcoin import PayoutWallet, SignedTransaction  # noqa: E402

GOAL_SECONDS = 2.0
GOAL_VB_PER_PAYEE = 35.0
FEE_RATE = 2  # sat/vB
SECRET = " ".join(["abandon"] * 11 + ["about"])  # the BIP39 test vector: a throwaway test-network wallet


def payee_addresses(count: int) -> list[str]:
    """Distinct bitcoinlib_test P2WPKH addresses (hash160-sized programs; no keys needed to pay them)."""
    return [
        pubkeyhash_to_addr_bech32(hashlib.sha256(f"payee-{i}".encode()).digest()[:20], prefix="blt")
        for i in range(count)
    ]


def check_independently(tx: SignedTransaction, prevouts: dict[tuple[str, int], tuple[int, str]]) -> str:
    """Decode with embit and verify each input's signature; return a one-line verdict."""
    try:
        from embit.ec import PublicKey, Signature
        from embit.script import address_to_scriptpubkey, p2pkh, p2wpkh
        from embit.transaction import Transaction
    except ImportError:
        return "embit not installed: independent check skipped"
    parsed = Transaction.parse(bytes.fromhex(tx.raw_hex))
    value_in = 0
    for index, vin in enumerate(parsed.vin):
        value, address = prevouts[(vin.txid.hex(), vin.vout)]
        value_in += value
        sig, pub_bytes = vin.witness.items
        pub = PublicKey.parse(pub_bytes)
        assert p2wpkh(pub).data == address_to_scriptpubkey(address).data
        digest = parsed.sighash_segwit(index, p2pkh(pub), value, sighash=sig[-1])
        assert pub.verify(Signature.parse(sig[:-1]), digest), f"input {index} signature invalid"
    fee = value_in - sum(out.value for out in parsed.vout)
    assert parsed.txid().hex() == tx.txid and fee == tx.fee
    return f"embit: txid matches, {len(parsed.vin)} signature(s) valid, fee = inputs - outputs = {fee} sat"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-uri", help="bitcoinlib wallet database URI (default: a temporary SQLite file)")
    parser.add_argument("--payees", type=int, default=1_000)
    parser.add_argument("--sample", type=int, default=20, help="one-payee transactions to build")
    parser.add_argument("--repeat", type=int, default=3, help="timed builds of the big batch")
    args = parser.parse_args()

    db_uri = args.db_uri or f"sqlite:///{Path(_DATA.name) / 'bench-wallet.sqlite'}"
    wallet = PayoutWallet(secret=SECRET, db_uri=db_uri, name=f"bench-{os.getpid()}")
    wallet.fund_test_wallet(1)
    from bitcoinlib.db import DbTransaction, DbTransactionOutput

    session = wallet._wallet.session  # the bench reads bitcoinlib's own record of the funded coins
    prevouts = {
        (t.txid.hex(), o.output_n): (o.value, o.address)
        for o, t in session.query(DbTransactionOutput, DbTransaction).join(DbTransaction).all()
    }
    addresses = payee_addresses(args.payees)
    payments = [(address, 10_000 + i) for i, address in enumerate(addresses)]
    print(f"network bitcoinlib_test, wallet database {db_uri.split(':', 1)[0]}, fee rate {FEE_RATE} sat/vB")

    timings = []
    batch = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        batch = wallet.build_batch(payments, FEE_RATE)
        timings.append(time.perf_counter() - started)
    assert batch is not None
    best, median = min(timings), statistics.median(timings)
    per_payee = batch.vsize / args.payees
    print(f"\none batch of {args.payees:,} P2WPKH payees (+1 change), {len(batch.inputs)} input(s)")
    print(
        f"  build+sign: best {best:.3f} s, median {median:.3f} s of {args.repeat} "
        f"(goal < {GOAL_SECONDS:.0f} s: {'met' if median < GOAL_SECONDS else 'MISSED'})"
    )
    print(f"  vsize {batch.vsize:,} vB, weight {batch.weight:,} WU, fee {batch.fee:,} sat")
    print(
        f"  {per_payee:.2f} vB per payee (goal <= {GOAL_VB_PER_PAYEE:.0f}: "
        f"{'met' if per_payee <= GOAL_VB_PER_PAYEE else 'MISSED'})"
    )
    print(f"  {check_independently(batch, prevouts)}")

    singles = []
    started = time.perf_counter()
    for address, amount in payments[: args.sample]:
        singles.append(wallet.build_batch([(address, amount)], FEE_RATE))
    single_seconds = (time.perf_counter() - started) / args.sample
    single_vb = statistics.mean(tx.vsize for tx in singles)
    verdicts = {check_independently(tx, prevouts).split(",")[0] for tx in singles}
    print(
        f"\none-payee transactions: built a sample of {args.sample} and extrapolated to {args.payees:,} (not all built)"
    )
    total_vb = single_vb * args.payees
    print(f"  {single_vb:.1f} vB each (1 input, payee + change), {single_seconds * 1000:.0f} ms each to build")
    print(
        f"  {args.payees:,} of them: ~{total_vb:,.0f} vB, ~{total_vb * FEE_RATE:,.0f} sat in fees, "
        f"~{single_seconds * args.payees:.1f} s to build+sign; {', '.join(sorted(verdicts))}"
    )

    ratio = per_payee / single_vb
    print(
        f"\nbatch vs one-payee: {per_payee:.2f} / {single_vb:.1f} vB per payee = {ratio:.3f} "
        f"({(1 - ratio) * 100:.1f}% less block space and fee)"
    )
    started = time.perf_counter()
    wallet.broadcast(batch)
    print(
        f"\nbroadcast of the batch (simulated) and its record in the wallet database: "
        f"{time.perf_counter() - started:.3f} s"
    )
    wallet.close()
    return 0 if median < GOAL_SECONDS and per_payee <= GOAL_VB_PER_PAYEE else 1


if __name__ == "__main__":
    sys.exit(main())
