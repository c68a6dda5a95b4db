"""Every service killed with SIGKILL in the middle of a round's pipeline and restarted: the pipeline
finishes the round with results identical to an uninterrupted run of the same tournament
(every score, every allocation line, every payee output)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from rich.console import Console

from crowdquant.common.v1 import common_pb2
from crowdquant.demo.run import TOURNAMENT, Demo
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from services.registry import SERVICES

REF = common_pb2.RoundRef(tournament_id=TOURNAMENT, round_number=1)


def results(demo: Demo) -> dict:
    p = demo.pipeline
    names = {pl.model_id: pl.profile.name for pl in demo.players}
    scores = p.call(p.scoring.ListRoundScores, sc_pb.ListRoundScoresRequest(round=REF, page_size=1000)).scores
    allocation = p.call(p.payouts.GetAllocation, po_pb.GetAllocationRequest(round=REF)).allocation
    outputs = sorted((o.address, o.amount_satoshis) for b in p.round_batches(REF)
                     if b.state != po_pb.Batch.STATE_VOIDED for o in b.outputs)
    return {
        "scores": {names[s.model.model_id]: (s.logloss.mean, s.corr.mean, s.mmc.mean, s.meta_weight) for s in scores},
        "allocation": {names[line.model.model_id]: (line.amount_satoshis, line.eligible) for line in allocation.lines},
        "outputs": outputs,
    }


def run_demo(postgres, tmp_path: Path, name: str, kill: bool) -> dict:
    url = asyncio.run(postgres.create_database(name))
    demo = Demo(Console(file=(tmp_path / f"{name}.txt").open("w"), width=140), rounds=1, participants=8, small=True,
                database_url=url, data_dir=tmp_path / name)
    try:
        demo.start()
        demo.setup_tournament()
        demo.play_round(1, run_pipeline=False)
        p = demo.pipeline
        if kill:
            for step, victim in zip(("close", "resolve", "score", "publish", "allocate", "pay"),
                                    (*SERVICES, "submissions", "payouts"), strict=True):
                demo.cluster.kill(victim)
                demo.cluster.start(victim)
                status = asyncio.run(demo.cluster.wait_healthy())
                assert all(s == "SERVING" for s in status.values()), status
                for attempt in range(5):
                    try:
                        p.run(REF, until=step)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                                or attempt == 4:
                            raise
        p.run(REF)
        assert p.round(REF).state == p.round(REF).STATE_PAID
        assert demo.audit()
        return results(demo)
    finally:
        demo.stop()
        asyncio.run(postgres.drop_database(url))


def test_service_kills_mid_pipeline_change_no_result(postgres, tmp_path: Path):
    calm = run_demo(postgres, tmp_path, "calm", kill=False)
    killed = run_demo(postgres, tmp_path, "killed", kill=True)
    assert calm["scores"] == killed["scores"]
    assert calm["allocation"] == killed["allocation"]
    assert calm["outputs"] == killed["outputs"] and calm["outputs"]
