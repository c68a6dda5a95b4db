"""Benchmark of the public gateway: GET /api/v1/leaderboard (top 100 of 1,000 models) against a
bare ASGI hello-world endpoint, at 100 concurrent clients, in one run.

    python bench/gateway.py               # 8 s of load per target (4 alternating rounds) after a warm-up
    python bench/gateway.py --seconds 3   # a shorter smoke run
    python bench/gateway.py --http h11    # with uvicorn's pure-Python HTTP parser for both servers

Set-up: a real PostgreSQL (its own pgserver in a temporary folder unless DATABASE_URL is set), the
real submissions and leaderboard services on loopback, and 1,000 models' published scores over
three rounds stored through the leaderboard's publish handler and loaded by the running service's
cache. Each target then runs in its own process under uvicorn with the same settings
(``services.gateway.server.uvicorn_config``): the gateway app as ``crowdquant serve gateway`` builds
it (response cache, rate limiter with a limit high enough not to refuse the one benchmark address,
metrics), or a hello-world ASGI callable. The load comes from this process: 100 keep-alive
HTTP/1.1 connections to 127.0.0.1 only, each sending its next request as soon as the previous
answer arrived, for a fixed time; then everything stops. Clients send ``Accept-Encoding: gzip`` as
browsers and HTTP libraries do (``--identity`` adds a run of clients that do not). Goals: the
leaderboard at >= 50% of the hello-world rate, and its p99 latency <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import os
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLIENTS = 100
MODELS = 1_000
TOP = 100
GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0
HOST = "127.0.0.1"


# --- the servers (run in child processes) --------------------------------------------------------


async def hello(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """The baseline: the least an ASGI application can do for a request."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"hello, world"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve(target: str, port: int, leaderboard: str, http: str, loop: str) -> None:
    import uvicorn

    from services.gateway.app import create_app
    from services.gateway.server import uvicorn_config
    from services.gateway.settings import GatewaySettings

    if target == "gateway":
        settings = GatewaySettings(
            leaderboard_addr=leaderboard,
            gateway_rate_limit_per_second=1_000_000,
            gateway_rate_limit_burst=1_000_000,
            log_level="warning",
        )
        app = create_app(settings)
    else:
        app = hello
    uvicorn.Server(uvicorn_config(app, HOST, port, http=http, loop=loop)).run()


# --- the load --------------------------------------------------------------------------------------


def implementation(choice: str, fast: str, plain: str) -> str:
    """What uvicorn's "auto" resolves to: the C implementation when its package is installed."""
    if choice != "auto":
        return choice
    return fast if importlib.util.find_spec(fast) else plain


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, int]:
    """Send one request and read its answer (status, body bytes); byte-level parsing keeps the
    load generator's own cost per request small next to the servers'."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    at = head.lower().find(b"\r\ncontent-length:")
    length = int(head[at + 17 : head.index(b"\r\n", at + 2)]) if at >= 0 else 0
    if length:
        await reader.readexactly(length)
    return status, length


async def client(
    port: int, path: str, encoding: str, start: float, stop: float, latencies: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: crowdquant-bench\r\n"
        f"Accept-Encoding: {encoding}\r\n\r\n"
    ).encode()
    try:
        while (began := time.perf_counter()) < stop:
            status, _ = await one_request(reader, writer, request)
            if began >= start:
                latencies.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


@dataclass
class Tally:
    """What one target's clients saw over all its measured rounds."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else math.nan


async def load(port: int, path: str, encoding: str, warmup: float, seconds: float, tally: Tally) -> None:
    """``CLIENTS`` closed-loop clients for ``warmup + seconds``; only the last ``seconds`` count."""
    start = time.perf_counter() + warmup
    stop = start + seconds
    await asyncio.gather(
        *(client(port, path, encoding, start, stop, tally.latencies, tally.statuses) for _ in range(CLIENTS))
    )
    tally.seconds += seconds


async def wait_ready(port: int, path: str, proc: asyncio.subprocess.Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"server for {path} exited with {proc.returncode}")
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            status, _ = await one_request(reader, writer, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            writer.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"server for {path} not ready within {timeout} s")


@dataclass(frozen=True)
class Target:
    name: str
    server: str
    path: str
    encoding: str = "gzip"


async def measure(targets: list[Target], leaderboard: str, args: argparse.Namespace) -> dict[str, Tally]:
    """Both servers run side by side; short measured rounds alternate between the targets, so a
    change in the machine's other load during the run affects every target alike."""
    procs: dict[str, tuple[asyncio.subprocess.Process, int]] = {}
    tallies = {t.name: Tally() for t in targets}
    try:
        for server in dict.fromkeys(t.server for t in targets):
            port = free_port()
            procs[server] = (
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--serve",
                    server,
                    "--port",
                    str(port),
                    "--leaderboard",
                    leaderboard,
                    "--http",
                    args.http,
                    "--loop",
                    args.loop,
                    env={**os.environ, "CROWDQUANT_LOG_LEVEL": "warning"},
                ),
                port,
            )
        for t in targets:
            proc, port = procs[t.server]
            await wait_ready(port, t.path, proc)
            await load(port, t.path, t.encoding, args.warmup, 0.0, Tally())
        for _ in range(args.rounds):
            for t in targets:
                await load(procs[t.server][1], t.path, t.encoding, 0.3, args.seconds / args.rounds, tallies[t.name])
    finally:
        for proc, _ in procs.values():
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    for t in targets:
        tally = tallies[t.name]
        bad = {s: n for s, n in tally.statuses.items() if s != 200}
        print(
            f"  {t.server:<7} GET {t.path:<38} {t.encoding:<8} {tally.rate:>7,.0f} req/s   "
            f"p50 {tally.percentile_ms(0.5):6.2f} ms   p99 {tally.percentile_ms(0.99):6.2f} ms"
            + (f"   non-200: {bad}" if bad else "")
        )
        if bad:
            raise RuntimeError(f"{t.name} answered {bad}")
    return tallies


# --- the data ----------------------------------------------------------------------------------------


async def seed(database_url: str, cache) -> None:  # type: ignore[no-untyped-def]
    from services.leaderboard.domain.boards import ModelResult, RoundBoard, Source
    from services.leaderboard.domain.metrics import Metric, Score
    from services.leaderboard.usecases.publish import store_round
    from shared.db import Database

    rng = random.Random(7)
    skill = [rng.gauss(0.01, 0.01) for _ in range(MODELS)]
    database = Database(database_url, schema="leaderboard", pool_size=1)
    try:
        for number in (1, 2, 3):
            results = []
            for i in range(MODELS):
                corr, mmc, half = skill[i] + rng.gauss(0, 0.01), rng.gauss(0, 0.005), abs(rng.gauss(0.006, 0.002))
                stake = rng.choice([0, 10_000, 250_000, 5_000_000])
                results.append(
                    ModelResult(
                        f"m_{i:04d}",
                        f"model-{i:04d}",
                        f"participant-{i % 400:03d}",
                        {
                            Metric.CORR: Score(corr, corr - half, corr + half),
                            Metric.MMC: Score(mmc, mmc - half, mmc + half),
                        },
                        stake,
                        int(stake * max(-0.05, min(0.05, 0.5 * corr + 2 * mmc))),
                    )
                )
            board = RoundBoard(
                "bench",
                number,
                Source.LIVE,
                Metric.CORR,
                (Metric.CORR, Metric.MMC),
                tuple(results),
                meta_model={Metric.CORR: Score(0.02, 0.015, 0.025)},
                payouts_known=True,
            )
            async with database.transaction() as conn:
                await store_round(conn, board)
    finally:
        await database.dispose()
    await cache.sync()


async def main(args: argparse.Namespace) -> int:
    from crowdquant.cli.bootstrap import create_service_keys
    from shared.config import CommonSettings
    from tests.support import PostgresForTests, start_services, stop_services

    postgres = PostgresForTests()
    url = await postgres.create_database("bench_gateway")
    try:
        keys = await create_service_keys(CommonSettings(), "gateway bench", url=url)
        running = await start_services(url, keys, names=["submissions", "leaderboard"])
        try:
            started = time.perf_counter()
            await seed(url, running["leaderboard"].ctx.extras["cache"])
            print(f"seeded 3 published rounds of {MODELS:,} models in {time.perf_counter() - started:.1f} s")
            print(
                f"{CLIENTS} concurrent keep-alive clients; {args.warmup:g} s warm-up, then {args.seconds:g} s "
                f"measured per target in {args.rounds} alternating rounds; load average {os.getloadavg()[0]:.1f}; "
                f"same uvicorn settings (http={implementation(args.http, 'httptools', 'h11')}, "
                f"loop={implementation(args.loop, 'uvloop', 'asyncio')}):"
            )
            board = f"/api/v1/leaderboard?page_size={TOP}"
            targets = [Target("hello", "hello", "/"), Target("board", "gateway", board)]
            if args.identity:
                targets.append(Target("board-identity", "gateway", board, "identity"))
            tallies = await measure(targets, running["leaderboard"].address, args)
            base_rps, rps, p99 = tallies["hello"].rate, tallies["board"].rate, tallies["board"].percentile_ms(0.99)
        finally:
            await stop_services(running)
    finally:
        await postgres.drop_database(url)
        postgres.close()
    ratio = rps / base_rps
    ok_ratio, ok_p99 = ratio >= GOAL_RATIO, p99 <= GOAL_P99_MS
    print(f"\nleaderboard / hello-world rate: {ratio:.0%} (goal >= {GOAL_RATIO:.0%}) {'met' if ok_ratio else 'MISSED'}")
    print(f"leaderboard p99: {p99:.1f} ms (goal <= {GOAL_P99_MS:g} ms) {'met' if ok_p99 else 'MISSED'}")
    return 0 if ok_ratio and ok_p99 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds of load per target")
    parser.add_argument("--rounds", type=int, default=4, help="alternating measured rounds per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument(
        "--identity", action="store_true", help="also measure clients that do not accept gzip (for information)"
    )
    parser.add_argument(
        "--http",
        choices=["auto", "h11", "httptools"],
        default="auto",
        help="uvicorn's HTTP implementation for both servers (auto: httptools when installed)",
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="uvicorn's event loop for both servers (auto: uvloop when installed)",
    )
    parser.add_argument("--serve", choices=["gateway", "hello"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--leaderboard", default="", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve:
        serve(parsed.serve, parsed.port, parsed.leaderboard, parsed.http, parsed.loop)
        sys.exit(0)
    sys.exit(asyncio.run(main(parsed)))
