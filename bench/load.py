"""Load: many concurrent uploaders plus anonymous leaderboard readers, against real processes.

Every service runs as its own process (as in production) on loopback; the load comes from this
process and stops by itself after ``--seconds``. After it, every receipt is checked against what
the database stored (the SHA-256 of the stored bytes) and the number of stored uploads is compared
with the number of receipts: nothing may be lost. Goal: 0 errors, 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import grpc
import numpy as np

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
from shared.testing import PostgresForTests, bearer, upload_stream

SPEC = pb.GeneratedDatasetSpec(seed=9, n_train=5000, n_validation=6000, n_live=3000, n_features=10,
                               n_training_eras=10, n_tournament_eras=7)
md = bearer
requests = upload_stream


async def run(uploaders: int, readers: int, seconds: float, max_per_model: int = 20) -> dict:
    configure_logging("load", "warning")
    pg = PostgresForTests()
    url = await pg.create_database("load")
    settings = CommonSettings()
    service_keys = await create_service_keys(settings, "load", url=url)
    operator = await create_key(settings, Role.OPERATOR, "", "load", [], url=url)
    cluster = Cluster(database_url=url, service_keys=service_keys, log_dir=Path(tempfile.mkdtemp(prefix="cqload")),
                      with_gateway=readers > 0)
    result: dict = {}
    try:
        cluster.start_all()
        status = await cluster.wait_healthy()
        assert all(s == "SERVING" for s in status.values()), status
        channel = grpc.aio.insecure_channel(cluster.addr("submissions"))
        subs, ident = pb_grpc.SubmissionsServiceStub(channel), id_grpc.IdentityServiceStub(channel)
        await subs.CreateTournament(pb.CreateTournamentRequest(
            request_id="t", tournament_id="load", target_kind=1,
            rules=pb.TournamentRules(upload=pb.UploadRules(max_uploads_per_model_per_round=max_per_model))),
            metadata=md(operator))
        opened = (await subs.OpenRound(pb.OpenRoundRequest(request_id="o", tournament_id="load", generated=SPEC),
                                       metadata=md(operator))).round
        ids: list[str] = []
        async for m in subs.StreamRoundTargets(pb.StreamRoundTargetsRequest(round=opened.round),
                                               metadata=md(service_keys["scoring"])):
            ids += m.chunk.ids.decode().split("\n")
        from bitcoinlib.keys import HDKey

        address = HDKey(network="bitcoinlib_test", witness_type="segwit").address()
        players = []
        for i in range(uploaders):
            p = (await ident.CreateParticipant(id_pb.CreateParticipantRequest(request_id=f"p{i}", display_name=f"u{i}"),
                                               metadata=md(operator))).participant
            key = (await ident.CreateApiKey(id_pb.CreateApiKeyRequest(
                request_id=f"k{i}", participant_id=p.participant_id, role=common_pb2.ROLE_PARTICIPANT),
                metadata=md(operator))).secret
            model = (await subs.CreateModel(pb.CreateModelRequest(request_id=f"m{i}", tournament_id="load",
                                                                  display_name=f"model{i}", payout_address=address),
                                            metadata=md(key))).model
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
                        resp = await subs.UploadPredictions(requests(header, ids, values), metadata=md(key),
                                                            timeout=120)
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
                "SELECT model_id, version, content_sha256, predictions FROM submissions.submissions")
        finally:
            await conn.close()
        stored = {(r["model_id"], r["version"]): (r["content_sha256"], hashlib.sha256(r["predictions"]).hexdigest())
                  for r in rows}
        mismatched = sum(1 for sha, actual in stored.values() if sha != actual)
        lost = sum(1 for r in receipts if stored.get((r.model_id, r.version), ("",))[0] != r.content_sha256)
        result = {
            "uploads": len(receipts), "seconds": round(elapsed, 1), "uploads_per_s": round(len(receipts) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000) if latencies else None,
            "p99_ms": round(float(np.percentile(latencies, 99)) * 1000) if latencies else None,
            "errors": errors, "lost": lost, "stored": len(stored), "hash_mismatches": mismatched,
            "reads": len(reads), "read_errors": read_errors,
            "read_p99_ms": round(float(np.percentile(reads, 99)) * 1000) if reads else None,
        }
        await channel.close()
    finally:
        cluster.stop()
        await pg.drop_database(url)
        pg.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploaders", type=int, default=200)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    os.environ.setdefault("CROWDQUANT_LOG_LEVEL", "warning")
    result = asyncio.run(run(args.uploaders, args.readers, args.seconds))
    print(json.dumps(result, indent=2))
    print(f"{result['uploads_per_s']} uploads/s over {result['seconds']} s with {args.uploaders} uploaders, "
          f"p99 {result['p99_ms']} ms; errors {sum(result['errors'].values())}, lost {result['lost']} (goal 0, 0)")


if __name__ == "__main__":
    main()
