"""Load: many concurrent uploaders plus anonymous leaderboard readers, against real processes.

Every service runs as its own process (as in production) on loopback; the load comes from this
process and stops by itself after ``--seconds``. After it, every receipt is checked against what
the database stored (the SHA-256 of the stored bytes) and the number of stored uploads is compared
with the number of receipts: nothing may be lost. Goal: 0 errors, 0 lost.

``--scenario isolation`` is the long run of issue 16's acceptance: one participant asks for 36 keys
(most refused by the per-participant key limit) and keeps 1,000 idle upload streams wanted (a
header, then nothing; each one refused or cut is opened again) while another participant uploads
without pause. Goal: the honest participant's p99 under 2 s, health SERVING at every probe.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crowdquant.cli.bootstrap import create_key, create_service_keys
from crowdquant.cli.cluster import Cluster
from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from shared.auth import Role
from shared.config import CommonSettings
from shared.db import to_plain_url
from shared.logging import configure_logging
from tests.support import PostgresForTests, bearer, upload_stream

SPEC = pb.GeneratedDatasetSpec(
    seed=9, n_train=5000, n_validation=6000, n_live=3000, n_features=10, n_training_eras=10, n_tournament_eras=7
)
md = bearer
requests = upload_stream


async def run(uploaders: int, readers: int, seconds: float, max_per_model: int = 20) -> dict:
    configure_logging("load", "warning")
    pg = PostgresForTests()
    url = await pg.create_database("load")
    settings = CommonSettings()
    service_keys = await create_service_keys(settings, "load", url=url)
    operator = await create_key(settings, Role.OPERATOR, "", "load", [], url=url)
    cluster = Cluster(
        database_url=url,
        service_keys=service_keys,
        log_dir=Path(tempfile.mkdtemp(prefix="cqload")),
        with_gateway=readers > 0,
    )
    result: dict = {}
    try:
        cluster.start_all()
        status = await cluster.wait_healthy()
        assert all(s == "SERVING" for s in status.values()), status
        channel = grpc.aio.insecure_channel(cluster.addr("submissions"))
        subs, ident = pb_grpc.SubmissionsServiceStub(channel), id_grpc.IdentityServiceStub(channel)
        await subs.CreateTournament(
            pb.CreateTournamentRequest(
                request_id="t",
                tournament_id="load",
                target_kind=1,
                rules=pb.TournamentRules(upload=pb.UploadRules(max_uploads_per_model_per_round=max_per_model)),
            ),
            metadata=md(operator),
        )
        opened = (
            await subs.OpenRound(
                pb.OpenRoundRequest(request_id="o", tournament_id="load", generated=SPEC), metadata=md(operator)
            )
        ).round
        ids: list[str] = []
        async for m in subs.StreamRoundTargets(
            pb.StreamRoundTargetsRequest(round=opened.round), metadata=md(service_keys["scoring"])
        ):
            ids += m.chunk.ids.decode().split("\n")
        from bitcoinlib.keys import HDKey

        address = HDKey(network="bitcoinlib_test", witness_type="segwit").address()
        players = []
        for i in range(uploaders):
            p = (
                await ident.CreateParticipant(
                    id_pb.CreateParticipantRequest(request_id=f"p{i}", display_name=f"u{i}"), metadata=md(operator)
                )
            ).participant
            key = (
                await ident.CreateApiKey(
                    id_pb.CreateApiKeyRequest(
                        request_id=f"k{i}", participant_id=p.participant_id, role=common_pb2.ROLE_PARTICIPANT
                    ),
                    metadata=md(operator),
                )
            ).secret
            model = (
                await subs.CreateModel(
                    pb.CreateModelRequest(
                        request_id=f"m{i}", tournament_id="load", display_name=f"model{i}", payout_address=address
                    ),
                    metadata=md(key),
                )
            ).model
            players.append((key, model.model_id))
        receipts: list[pb.Receipt] = []
        latencies: list[float] = []
        errors: dict[str, int] = {}
        stop_at = time.perf_counter() + seconds

        async def uploader(slot: int) -> None:
            key, model_id = players[slot]
            rng = np.random.default_rng(slot)
            for _ in range(max_per_model):
                if time.perf_counter() >= stop_at:
                    return
                values = rng.uniform(0.2, 0.8, len(ids)).astype("<f4")
                header = pb.UploadHeader(request_id=uuid.uuid4().hex, round=opened.round, model_id=model_id)
                started = time.perf_counter()
                for attempt in range(5):
                    try:
                        resp = await subs.UploadPredictions(
                            requests(header, ids, values), metadata=md(key), timeout=120
                        )
                        receipts.append(resp.receipt)
                        latencies.append(time.perf_counter() - started)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() in (grpc.StatusCode.UNAVAILABLE,) and attempt < 4:
                            await asyncio.sleep(0.5 * (attempt + 1))
                            continue
                        errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                        break

        reads: list[float] = []
        read_errors = 0

        def reader_loop() -> None:
            nonlocal read_errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    board = f"http://127.0.0.1:{cluster.gateway_port}/api/v1/leaderboard?page_size=50"
                    with urllib.request.urlopen(board, timeout=10) as r:
                        json.loads(r.read())
                    reads.append(time.perf_counter() - started)
                except OSError as exc:
                    if getattr(exc, "code", None) not in (404, 429):
                        read_errors += 1
                    time.sleep(0.05)

        started = time.perf_counter()
        reader_tasks = [asyncio.to_thread(reader_loop) for _ in range(readers if cluster.gateway_port else 0)]
        await asyncio.gather(*(uploader(s) for s in range(uploaders)), *reader_tasks)
        elapsed = time.perf_counter() - started
        # verification: every receipt matches the stored bytes, nothing lost
        conn = await asyncpg.connect(to_plain_url(url))
        try:
            rows = await conn.fetch(
                "SELECT model_id, version, content_sha256, predictions FROM submissions.submissions"
            )
        finally:
            await conn.close()
        stored = {
            (r["model_id"], r["version"]): (r["content_sha256"], hashlib.sha256(r["predictions"]).hexdigest())
            for r in rows
        }
        mismatched = sum(1 for sha, actual in stored.values() if sha != actual)
        lost = sum(1 for r in receipts if stored.get((r.model_id, r.version), ("",))[0] != r.content_sha256)
        result = {
            "uploads": len(receipts),
            "seconds": round(elapsed, 1),
            "uploads_per_s": round(len(receipts) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000) if latencies else None,
            "p99_ms": round(float(np.percentile(latencies, 99)) * 1000) if latencies else None,
            "errors": errors,
            "lost": lost,
            "stored": len(stored),
            "hash_mismatches": mismatched,
            "reads": len(reads),
            "read_errors": read_errors,
            "read_p99_ms": round(float(np.percentile(reads, 99)) * 1000) if reads else None,
        }
        await channel.close()
    finally:
        cluster.stop()
        await pg.drop_database(url)
        pg.close()
    return result


def greedy_process(
    address: str,
    keys: list[str],
    model_id: str,
    round_ref: bytes,
    streams: int,
    seconds: float,
    reopen_seconds: float,
    ends: multiprocessing.Queue,
) -> None:
    """The greedy participant: ``streams`` upload streams that send a header and nothing, each reopened
    about ``reopen_seconds`` (jittered) after it ends (refused, or cut by the idle timeout), for
    ``seconds``; with ``reopen_seconds`` <= 0 only a held stream that was cut is reopened. Puts the
    count of how they ended on ``ends``."""

    async def attack() -> dict[str, int]:
        ref = common_pb2.RoundRef.FromString(round_ref)
        stop = asyncio.Event()
        stream_ends: Counter[str] = Counter()
        channels = [grpc.aio.insecure_channel(address) for _ in keys]

        async def header_then_nothing(request_id: str):
            yield pb.UploadPredictionsRequest(
                header=pb.UploadHeader(request_id=request_id, model_id=model_id, round=ref)
            )
            await stop.wait()

        async def idle_stream(n: int) -> None:
            stub = pb_grpc.SubmissionsServiceStub(channels[n % len(keys)])
            rng = np.random.default_rng(n)
            attempt = 0
            while not stop.is_set():
                attempt += 1
                try:
                    await stub.UploadPredictions(
                        header_then_nothing(f"idle-{n}-{attempt}"), metadata=md(keys[n % len(keys)])
                    )
                    stream_ends["OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    stream_ends[exc.code().name] += 1
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reopen_seconds <= 0:
                        return  # holding only: a refused stream is not asked again
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(reopen_seconds, 0.5) * rng.uniform(0.5, 1.5))
                except TimeoutError:
                    pass

        tasks = [asyncio.create_task(idle_stream(n)) for n in range(streams)]
        await asyncio.sleep(seconds)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()
        return dict(stream_ends)

    ends.put(asyncio.run(attack()))


ISOLATION_SPEC = pb.GeneratedDatasetSpec(
    seed=5, n_train=1000, n_validation=4000, n_live=2000, n_features=8, n_training_eras=4, n_tournament_eras=6
)


async def run_isolation(
    streams: int = 1000, keys_asked: int = 36, seconds: float = 60.0, reopen_seconds: float = 5.0, pace: float = 0.6
) -> dict:
    """One participant holds ``streams`` idle upload streams with up to ``keys_asked`` keys while another uploads.

    Real processes on loopback with their default limits (keys and streams per participant, idle
    timeout). The greedy side is bounded: at most ``streams`` calls open at once, each reopened no
    sooner than ``reopen_seconds`` after it ended, everything cancelled after ``seconds``.
    """
    configure_logging("load", "warning")
    pg = PostgresForTests()
    url = await pg.create_database("isolation")
    settings = CommonSettings()
    service_keys = await create_service_keys(settings, "load", url=url)
    operator = await create_key(settings, Role.OPERATOR, "", "load", [], url=url)
    cluster = Cluster(database_url=url, service_keys=service_keys, log_dir=Path(tempfile.mkdtemp(prefix="cqiso")))
    channels: list[grpc.aio.Channel] = []
    try:
        cluster.start_all()
        status = await cluster.wait_healthy()
        assert all(s == "SERVING" for s in status.values()), status
        channel = grpc.aio.insecure_channel(cluster.addr("submissions"))
        channels.append(channel)
        subs, ident = pb_grpc.SubmissionsServiceStub(channel), id_grpc.IdentityServiceStub(channel)
        await subs.CreateTournament(
            pb.CreateTournamentRequest(
                request_id="t",
                tournament_id="iso",
                target_kind=1,
                rules=pb.TournamentRules(upload=pb.UploadRules(max_uploads_per_model_per_round=1000)),
            ),
            metadata=md(operator),
        )
        opened = (
            await subs.OpenRound(
                pb.OpenRoundRequest(request_id="o", tournament_id="iso", generated=ISOLATION_SPEC),
                metadata=md(operator),
            )
        ).round
        ids: list[str] = []
        async for m in subs.StreamRoundTargets(
            pb.StreamRoundTargetsRequest(round=opened.round), metadata=md(service_keys["scoring"])
        ):
            ids += m.chunk.ids.decode().split("\n")
        from bitcoinlib.keys import HDKey

        address = HDKey(network="bitcoinlib_test", witness_type="segwit").address()
        people = {}
        for name in ("greedy", "honest"):
            p = (
                await ident.CreateParticipant(
                    id_pb.CreateParticipantRequest(request_id=f"p-{name}", display_name=name), metadata=md(operator)
                )
            ).participant
            key = (
                await ident.CreateApiKey(
                    id_pb.CreateApiKeyRequest(
                        request_id=f"k-{name}", participant_id=p.participant_id, role=common_pb2.ROLE_PARTICIPANT
                    ),
                    metadata=md(operator),
                )
            ).secret
            model = (
                await subs.CreateModel(
                    pb.CreateModelRequest(
                        request_id=f"m-{name}",
                        tournament_id="iso",
                        display_name=f"{name}-model",
                        payout_address=address,
                    ),
                    metadata=md(key),
                )
            ).model
            people[name] = (p.participant_id, key, model.model_id)
        greedy_id, greedy_key, greedy_model = people["greedy"]
        greedy_keys, key_refusals = [greedy_key], Counter()
        for n in range(keys_asked - 1):
            try:
                greedy_keys.append(
                    (
                        await ident.CreateApiKey(
                            id_pb.CreateApiKeyRequest(
                                request_id=f"greedy-{n}", participant_id=greedy_id, role=common_pb2.ROLE_PARTICIPANT
                            ),
                            metadata=md(greedy_key),
                        )
                    ).secret
                )
            except grpc.aio.AioRpcError as exc:
                key_refusals[exc.code().name] += 1
        stop = asyncio.Event()
        # the greedy side runs in its own process, as an attacker would: it never slows the honest client's loop
        context = multiprocessing.get_context("spawn")
        ends_queue = context.Queue()
        greedy = context.Process(
            target=greedy_process,
            args=(
                cluster.addr("submissions"),
                greedy_keys,
                greedy_model,
                opened.round.SerializeToString(),
                streams,
                seconds + 10.0,
                reopen_seconds,
                ends_queue,
            ),
        )
        greedy.start()

        health_codes: Counter[str] = Counter()

        async def probe() -> None:
            health = health_pb2_grpc.HealthStub(channel)
            while not stop.is_set():
                try:
                    resp = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    health_codes[health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)] += 1
                except grpc.aio.AioRpcError as exc:
                    health_codes[exc.code().name] += 1
                await asyncio.sleep(0.2)

        latencies: list[float] = []
        honest_errors: Counter[str] = Counter()

        async def honest_uploads() -> None:
            """One upload every ``pace`` seconds (or right after the last, if slower): within the per-key rate."""
            _, key, model_id = people["honest"]
            rng = np.random.default_rng(2)
            n = 0
            while not stop.is_set():
                n += 1
                if latencies:
                    await asyncio.sleep(max(0.0, pace - latencies[-1]))
                header = pb.UploadHeader(request_id=f"honest-{n}", model_id=model_id, round=opened.round)
                started = time.perf_counter()
                try:
                    await subs.UploadPredictions(
                        requests(header, ids, rng.uniform(0.3, 0.7, len(ids))), metadata=md(key), timeout=30
                    )
                    latencies.append(time.perf_counter() - started)
                except grpc.aio.AioRpcError as exc:
                    honest_errors[exc.code().name] += 1

        prober = asyncio.create_task(probe())
        await asyncio.sleep(min(10.0, seconds / 4))  # the attack takes hold before the honest side starts
        honest = asyncio.create_task(honest_uploads())
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        stop.set()
        elapsed = time.perf_counter() - started
        await asyncio.wait_for(asyncio.gather(honest, prober, return_exceptions=True), timeout=60)
        stream_ends = await asyncio.to_thread(ends_queue.get, True, 60)
        greedy.join(30)
        return {
            "greedy_keys_granted": len(greedy_keys),
            "greedy_key_refusals": dict(key_refusals),
            "greedy_stream_ends": dict(stream_ends),
            "honest_uploads": len(latencies),
            "honest_errors": dict(honest_errors),
            "seconds": round(elapsed, 1),
            "honest_p50_ms": round(statistics.median(latencies) * 1000) if latencies else None,
            "honest_p99_ms": round(float(np.percentile(latencies, 99)) * 1000) if latencies else None,
            "health": dict(health_codes),
        }
    finally:
        for ch in channels:
            await ch.close()
        cluster.stop()
        await pg.drop_database(url)
        pg.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["load", "isolation"], default="load")
    parser.add_argument("--uploaders", type=int, default=200)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--streams", type=int, default=1000, help="isolation: idle streams the greedy side wants")
    parser.add_argument("--keys", type=int, default=36, help="isolation: keys the greedy side asks for")
    parser.add_argument(
        "--reopen-seconds",
        type=float,
        default=5.0,
        help="isolation: pause (jittered) before the greedy side reopens a stream that ended; "
        "0 = it holds what it got and asks no more after a refusal",
    )
    args = parser.parse_args()
    os.environ.setdefault("CROWDQUANT_LOG_LEVEL", "warning")
    if args.scenario == "isolation":
        result = asyncio.run(run_isolation(args.streams, args.keys, args.seconds, args.reopen_seconds))
        print(json.dumps(result, indent=2))
        healthy = set(result["health"]) == {"SERVING"}
        print(
            f"honest participant: {result['honest_uploads']} uploads in {result['seconds']} s beside "
            f"{args.streams} idle streams with {args.keys} keys asked ({result['greedy_keys_granted']} granted): "
            f"p99 {result['honest_p99_ms']} ms (goal < 2000), errors {sum(result['honest_errors'].values())}; "
            f"health {'SERVING throughout' if healthy else result['health']}"
        )
        return
    result = asyncio.run(run(args.uploaders, args.readers, args.seconds))
    print(json.dumps(result, indent=2))
    print(
        f"{result['uploads_per_s']} uploads/s over {result['seconds']} s with {args.uploaders} uploaders, "
        f"p99 {result['p99_ms']} ms; errors {sum(result['errors'].values())}, lost {result['lost']} (goal 0, 0)"
    )


if __name__ == "__main__":
    main()
