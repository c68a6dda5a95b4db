"""Benchmark of the ledger: transfers/s against raw INSERTs, chain verification, as-of balances.

    python bench/ledger.py            # full run (1,000,000 entries; several minutes)
    python bench/ledger.py --quick    # small sizes, for a smoke run

Measured in one run, on a fresh database (its own pgserver in a temp folder unless DATABASE_URL is
set), with ``synchronous_commit = on`` and every ledger check on (postings trigger with ordered
locks and limits, deferred sum check, hash chain), writes made as the application role through the
public Python API on SQLAlchemy/asyncpg:

(a) batches of 100 transfers per call, one client;
(b) single transfers from 8 concurrent clients over 1000 accounts, each posted on its own through
    ``ledger.GroupCommit`` (one per client process), which coalesces concurrent ones into one
    transaction, a savepoint-guarded statement per group;
(c) like (b), but all on 10 hot accounts.

The 8 clients of (b) and (c) run as asyncio tasks in ``--client-procs`` processes (default 2), as
service replicas would, so one Python event loop is not what is measured. Each case has a baseline:
the same rows (an entry and two postings per transfer) inserted into unconstrained tables, no index,
trigger or check, with the same concurrency and client code: in (a) the same batches; in (b) and (c)
one transaction per transfer, the plain way to write a single row (the raw rows coalesced like the
ledger's are printed too, for comparison). Every figure is printed beside its goal: (a) >= 5,000
transfers/s and >= 0.30 of raw, (b) >= 1,000 transfers/s and >= 0.50 of raw. Then the ledger is grown
to 1,000,000 entries and ``verify_chain`` and as-of balances are timed. The machine's load average is
printed with each figure: other processes on a 2-core box move these numbers a lot.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.payouts import ledger
from services.payouts.ledger.ddl import APP_ROLE, LEDGER_UPGRADE
from services.payouts.ledger.pg import driver

GOALS = {"a": (5_000.0, 0.30), "b": (1_000.0, 0.50)}
"""Per case: (transfers/s, ledger throughput / raw INSERT throughput in the same run)."""
LEDGER_TABLES = ["ledger_entries", "ledger_postings", "ledger_chain", "ledger_balances", "ledger_accounts"]
ACCOUNTS = [f"bench:acct:{i}" for i in range(1000)]
HOT = ACCOUNTS[:10]
HOUSE = "bench:house"

RAW_DDL = [
    "CREATE SCHEMA raw",
    """CREATE TABLE raw.entries (id uuid, effective_at timestamptz, recorded_at timestamptz DEFAULT now(),
       kind text, memo text, metadata jsonb, content_hash bytea)""",
    """CREATE TABLE raw.postings (account_id bigint, amount bigint, effective_at timestamptz,
       recorded_at timestamptz DEFAULT now(), entry_id uuid, idx smallint)""",
    f"GRANT USAGE ON SCHEMA raw TO {APP_ROLE}",
    f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA raw TO {APP_ROLE}",
]
RAW_INSERT = """
WITH e AS (
    INSERT INTO raw.entries (id, effective_at, kind, memo, metadata, content_hash)
    SELECT id, effective_at, kind, '', '{}', content_hash
      FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bytea[])
           AS t(id, effective_at, kind, content_hash)
)
INSERT INTO raw.postings (account_id, amount, effective_at, entry_id, idx)
SELECT account_id, amount, effective_at, entry_id, idx
  FROM unnest($5::int8[], $6::int8[], $7::timestamptz[], $8::uuid[], $9::int2[])
       AS p(account_id, amount, effective_at, entry_id, idx)
"""


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def make_transfers(
    n: int,
    pool: list[str],
    *,
    effective: datetime | None = None,
    spread_days: int = 0,
    house_share: float = 0.0,
) -> list[ledger.EntrySpec]:
    specs = []
    for _ in range(n):
        debit, credit = random.sample(pool, 2)
        if random.random() < house_share:
            credit = HOUSE
        when = effective - timedelta(seconds=random.randrange(spread_days * 86400)) if effective else None
        specs.append(
            ledger.transfer(
                ledger.new_entry_id(),
                "transfer",
                debit=debit,
                credit=credit,
                amount=random.randint(1, 1000),
                effective_at=when,
            )
        )
    return specs


def raw_arguments(specs: list[ledger.EntrySpec], ids: dict[str, int]) -> list[Any]:
    now = datetime.now(UTC)
    args: list[list[Any]] = [[] for _ in range(9)]
    for spec in specs:
        args[0].append(spec.id)
        args[1].append(spec.effective_at or now)
        args[2].append(spec.kind)
        args[3].append(bytes(32))
        for index, posting in enumerate(spec.postings):
            args[4].append(ids[posting.account])
            args[5].append(posting.amount)
            args[6].append(spec.effective_at or now)
            args[7].append(spec.id)
            args[8].append(index)
    return args


def app_engine(url: str, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        "postgresql+asyncpg://" + url.split("://", 1)[1],
        pool_size=pool_size,
        connect_args={"server_settings": {"role": APP_ROLE}},
    )


async def write(engine: AsyncEngine, specs: list[ledger.EntrySpec], ids: dict[str, int], raw: bool) -> None:
    """One transaction: the ledger API, or the baseline's plain INSERT of the same rows."""
    async with engine.begin() as conn:
        if raw:
            await (await driver(conn)).execute(RAW_INSERT, *raw_arguments(specs, ids))
        else:
            await ledger.post_entries(conn, specs)


class RawGroup:
    """The baseline coalesced like ``ledger.GroupCommit``: queued transfers, one INSERT transaction per group.

    Only for comparison (printed, no goal): it shows what the ledger costs over plain rows when both
    share transactions the same way."""

    def __init__(self, engine: AsyncEngine, ids: dict[str, int]) -> None:
        self.engine, self.ids = engine, ids
        self.queue: list[tuple[ledger.EntrySpec, asyncio.Future[None]]] = []
        self.task: asyncio.Task[None] | None = None

    async def post(self, spec: ledger.EntrySpec) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((spec, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.drain())
        await future

    async def drain(self) -> None:
        while self.queue:
            group, self.queue = self.queue, []
            await write(self.engine, [spec for spec, _ in group], self.ids, True)
            for _, future in group:
                future.set_result(None)


async def setup(url: str) -> dict[str, int]:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("CREATE SCHEMA payouts")
        for statement in LEDGER_UPGRADE + RAW_DDL:
            await admin.execute(statement)
        print(f"server: {await admin.fetchval('SELECT version()')}")
        print(
            f"synchronous_commit = {await admin.fetchval('SHOW synchronous_commit')}, "
            f"fsync = {await admin.fetchval('SHOW fsync')}, cores = {os.cpu_count()}, {load()}"
        )
    finally:
        await admin.close()
    engine = app_engine(url, 4)
    try:
        async with engine.begin() as conn:
            specs = [ledger.AccountSpec(code, ledger.AccountType.ASSET, non_negative=True) for code in ACCOUNTS]
            specs += [
                ledger.AccountSpec("bench:equity", ledger.AccountType.EQUITY),
                ledger.AccountSpec(HOUSE, ledger.AccountType.ASSET),
            ]
            opened = await ledger.open_accounts(conn, specs)
            funding = [
                ledger.transfer(
                    ledger.new_entry_id(),
                    "funding",
                    debit=code,
                    credit="bench:equity",
                    amount=10**15,
                    effective_at=datetime(2020, 1, 1, tzinfo=UTC),
                )
                for code in ACCOUNTS
            ]
            await ledger.post_entries(conn, funding)
    finally:
        await engine.dispose()
    return {a.code: a.id for a in opened}


async def run_batches(
    engine: AsyncEngine, batches: list[list[ledger.EntrySpec]], ids: dict[str, int], raw: bool
) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for specs in batches:
        began = time.perf_counter()
        await write(engine, specs, ids, raw)
        latencies.append(time.perf_counter() - began)
    return time.perf_counter() - start, latencies


async def _client_process(
    url: str,
    per_client: list[list[ledger.EntrySpec]],
    ids: dict[str, int],
    mode: str,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    engine = app_engine(url, len(per_client))
    committer = ledger.GroupCommit(engine)
    grouped_raw = RawGroup(engine, ids)
    latencies: list[float] = []

    async def client(specs: list[ledger.EntrySpec], record: bool) -> None:
        for spec in specs:
            began = time.perf_counter()
            if mode == "raw":
                await write(engine, [spec], ids, True)
            elif mode == "raw-grouped":
                await grouped_raw.post(spec)
            else:
                await committer.post(spec)
            if record:
                latencies.append(time.perf_counter() - began)

    warm = [make_transfers(3, list({p.account for s in specs for p in s.postings})) for specs in per_client]
    await asyncio.gather(*(client(specs, False) for specs in warm))  # connections open, plans cached
    ready.put(True)
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    start, groups_before = time.time(), committer.groups
    await asyncio.gather(*(client(specs, True) for specs in per_client))
    results.put((start, time.time(), latencies, committer.groups - groups_before))
    await engine.dispose()


def client_process(*args: Any) -> None:
    asyncio.run(_client_process(*args))


def run_clients(
    url: str, per_client: list[list[ledger.EntrySpec]], ids: dict[str, int], mode: str, procs: int
) -> tuple[float, list[float], int]:
    """The clients split over ``procs`` processes, released together; (elapsed seconds, latencies,
    ledger transactions committed)."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    groups = [per_client[i::procs] for i in range(procs)]
    workers = [
        context.Process(target=client_process, args=(url, group, ids, mode, ready, go, results)) for group in groups
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=120)
    go.set()
    outcomes = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = max(outcome[1] for outcome in outcomes) - min(outcome[0] for outcome in outcomes)
    latencies = [latency for outcome in outcomes for latency in outcome[2]]
    return elapsed, latencies, sum(outcome[3] for outcome in outcomes)


def report(
    count: int,
    elapsed: float,
    latencies: list[float],
    base_elapsed: float,
    base_latencies: list[float],
    goal: tuple[float, float] | None,
) -> bool:
    rate, base_rate = count / elapsed, count / base_elapsed
    ratio = rate / base_rate
    p99, base_p99 = percentile(latencies, 0.99), percentile(base_latencies, 0.99)
    rate_verdict = ratio_verdict = ""
    if goal is not None:
        rate_verdict = f" (goal >= {goal[0]:,.0f}/s: {'met' if rate >= goal[0] else 'MISSED'})"
        ratio_verdict = f" (goal >= {goal[1]:.2f}: {'met' if ratio >= goal[1] else 'MISSED'})"
    print(f"  ledger:   {rate:9,.0f} transfers/s   p99 {p99 * 1000:7.2f} ms{rate_verdict}")
    print(f"  raw:      {base_rate:9,.0f} transfers/s   p99 {base_p99 * 1000:7.2f} ms")
    print(
        f"  ratio:    ledger/raw throughput {ratio:.2f}{ratio_verdict}, "
        f"p99 {p99 / max(base_p99, 1e-9):.1f}x   [{load()}]"
    )
    return goal is None or (rate >= goal[0] and ratio >= goal[1])


async def sizes(url: str) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    try:
        ledger_bytes = sum(
            [await conn.fetchval("SELECT pg_total_relation_size($1)", f"payouts.{t}") for t in LEDGER_TABLES]
        )
        raw_bytes = sum(
            [await conn.fetchval("SELECT pg_total_relation_size($1)", f"raw.{t}") for t in ("entries", "postings")]
        )
        entries = await conn.fetchval("SELECT count(*) FROM payouts.ledger_entries")
        raw_entries = await conn.fetchval("SELECT count(*) FROM raw.entries")
        return ledger_bytes / entries, raw_bytes / raw_entries
    finally:
        await conn.close()


async def grow(url: str, target: int) -> float:
    """Fill the ledger to ``target`` entries (batches of 1000, 2 clients), effective times over a year.

    One transfer in five credits the house account, so one account has a long history to sum.
    """
    engine = app_engine(url, 2)
    async with engine.connect() as conn:
        have = await (await driver(conn)).fetchval("SELECT count(*) FROM payouts.ledger_entries")
    sizes_left = [min(1000, target - have - i) for i in range(0, max(0, target - have), 1000)]
    now = datetime.now(UTC)

    async def worker() -> None:
        while sizes_left:
            specs = make_transfers(sizes_left.pop(), ACCOUNTS, effective=now, spread_days=365, house_share=0.2)
            async with engine.begin() as conn:
                await ledger.post_entries(conn, specs)

    start = time.perf_counter()
    await asyncio.gather(worker(), worker())
    await engine.dispose()
    return time.perf_counter() - start


async def as_of(url: str, codes: list[str], samples: int, basis: ledger.TimeBasis) -> list[float]:
    """Latencies of get_balance at random times within the ledger's span on that clock."""
    engine = app_engine(url, 1)
    column = "effective_at" if basis == ledger.TimeBasis.EFFECTIVE else "recorded_at"
    latencies = []
    async with engine.connect() as conn:
        low, high = await (await driver(conn)).fetchrow(
            f"SELECT min({column}), max({column}) FROM payouts.ledger_entries WHERE kind = 'transfer'"
        )
        for _ in range(samples):
            when = low + (high - low) * random.random()
            began = time.perf_counter()
            await ledger.get_balance(conn, random.choice(codes), as_of=when, basis=basis)
            latencies.append(time.perf_counter() - began)
    await engine.dispose()
    return latencies


async def measure(url: str, ids: dict[str, int], args: argparse.Namespace) -> bool:
    ok = True
    print("\n(a) batches of 100 transfers per call, 1 client")
    batches = [make_transfers(100, ACCOUNTS) for _ in range(30 if args.quick else 300)]
    engine = app_engine(url, 1)
    await run_batches(engine, batches[:3], ids, raw=False)  # warm-up: connection, plans
    await run_batches(engine, batches[:3], ids, raw=True)
    elapsed, latencies = await run_batches(engine, batches[3:], ids, raw=False)
    base_elapsed, base_latencies = await run_batches(engine, batches[3:], ids, raw=True)
    await engine.dispose()
    ok &= report(100 * (len(batches) - 3), elapsed, latencies, base_elapsed, base_latencies, GOALS["a"])

    singles = 1_600 if args.quick else 8_000
    for label, pool, goal in (
        ("(b) single transfers, 8 concurrent clients, 1000 accounts", ACCOUNTS, GOALS["b"]),
        ("(c) single transfers, 8 concurrent clients, 10 hot accounts", HOT, None),
    ):
        print(f"\n{label} ({args.client_procs} client processes)")
        per_client = [make_transfers(singles // 8, pool) for _ in range(8)]
        elapsed, latencies, groups = run_clients(url, per_client, ids, "ledger", args.client_procs)
        base_elapsed, base_latencies, _ = run_clients(url, per_client, ids, "raw", args.client_procs)
        grouped_elapsed, _, _ = run_clients(url, per_client, ids, "raw-grouped", args.client_procs)
        ok &= report(singles // 8 * 8, elapsed, latencies, base_elapsed, base_latencies, goal)
        print(
            f"  raw coalesced the same way: {singles // 8 * 8 / grouped_elapsed:,.0f} transfers/s; "
            f"ledger/that {grouped_elapsed / elapsed:.2f} (for comparison, no goal)"
        )
        print(f"  group commit: {groups:,} ledger transactions, {singles // 8 * 8 / max(groups, 1):.1f} transfers each")

    target = 50_000 if args.quick else 1_000_000
    print(f"\ngrowing the ledger to {target:,} entries (batches of 1000, 2 clients) ...")
    print(f"  loaded in {await grow(url, target):.1f} s   [{load()}]")
    per_transfer, raw_per_transfer = await sizes(url)
    print(
        f"  bytes per transfer: ledger {per_transfer:,.0f} (entries, postings, chain, balances, accounts and "
        f"all their indexes), raw {raw_per_transfer:,.0f}; ratio {per_transfer / raw_per_transfer:.2f}"
    )
    admin = await asyncpg.connect(url)
    await admin.execute("VACUUM ANALYZE payouts.ledger_postings, payouts.ledger_entries, payouts.ledger_chain")
    await admin.close()

    engine = app_engine(url, 1)
    async with engine.begin() as conn:
        began = time.perf_counter()
        result = await ledger.verify_chain(conn)
        seconds = time.perf_counter() - began
    await engine.dispose()
    met = result.ok and seconds < 60
    ok &= met
    print(
        f"\nverify_chain: {result.entries_checked:,} entries in {seconds:.1f} s, ok={result.ok} "
        f"({result.entries_checked / seconds:,.0f} entries/s; goal < 60 s: {'met' if met else 'MISSED'})   "
        f"[{load()}]"
    )

    print("\nas-of balance (random account, random time within the ledger's span)")
    engine = app_engine(url, 1)
    async with engine.connect() as conn:
        count = await (await driver(conn)).fetchval("SELECT count(*) FROM payouts.ledger_postings")
        house = (await ledger.get_balance(conn, HOUSE)).posting_count
    await engine.dispose()
    print(
        f"  {count:,} postings; {len(ACCOUNTS)} accounts of ~{(count - house) // len(ACCOUNTS):,} postings, "
        f"house account {house:,}"
    )
    for basis in (ledger.TimeBasis.EFFECTIVE, ledger.TimeBasis.RECORDED):
        for name, codes, goal in (("accounts", ACCOUNTS, True), ("house", [HOUSE], False)):
            latencies = await as_of(url, codes, 200 if args.quick else 500, basis)
            p95 = percentile(latencies, 0.95) * 1000
            verdict = f" (goal p95 < 20 ms: {'met' if p95 < 20 else 'MISSED'})" if goal else " (busiest account)"
            print(
                f"  {basis.value:9} {name:8}: p50 {percentile(latencies, 0.5) * 1000:6.2f} ms  "
                f"p95 {p95:6.2f} ms"
                f"  max {max(latencies) * 1000:6.2f} ms{verdict}"
            )
            if goal:
                ok &= p95 < 20
    return ok


async def main(args: argparse.Namespace) -> int:
    random.seed(7)
    postgres = None
    if os.environ.get("DATABASE_URL"):
        admin_url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
        url = urlsplit(admin_url)._replace(path=f"/bench_ledger_{uuid.uuid4().hex[:8]}").geturl()
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'CREATE DATABASE "{urlsplit(url).path[1:]}"')
        await admin.close()
    else:
        from tests.support import PostgresForTests

        postgres = PostgresForTests()
        url = await postgres.create_database("bench_ledger")
    try:
        ok = await measure(url, await setup(url), args)
    finally:
        if postgres is not None:
            await postgres.drop_database(url)
            postgres.close()
        else:
            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
            await admin.close()
    print("\nall goals met" if ok else "\nsome goals MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--client-procs", type=int, default=2, help="processes the 8 clients of (b), (c) run in")
    sys.exit(asyncio.run(main(parser.parse_args())))
