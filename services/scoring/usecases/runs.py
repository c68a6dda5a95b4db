"""Scoring runs: one per resolved round, resumable, cancellable, and identical when repeated.

A run is a task in this process; its state (and progress) is in ``scoring.runs``. A second
ScoreRound of the same round joins the running or succeeded run. A run left "running" by a
crashed process is failed on start so the next ScoreRound starts afresh.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import Any

import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.scoring.api.convert import RoundInputs, compute, resolved_rows
from services.scoring.domain.eras import BENCHMARK_LOGLOSS
from services.scoring.peers import Peers
from services.scoring.store import scores as repo
from shared.db import Database
from shared.errors import FailedPrecondition, NotFound
from shared.logging import get_logger

log = get_logger("crowdquant.scoring")
SCORABLE = (sub_pb.Round.STATE_RESOLVED, sub_pb.Round.STATE_SCORED, sub_pb.Round.STATE_PAID)


def _sort_value(score: Any, name: str) -> float | None:
    if not score.HasField(name):
        return None
    value = getattr(score, name).mean
    return value if math.isfinite(value) else None


class Runner:
    def __init__(self, database: Database, peers: Peers) -> None:
        self.db = database
        self.peers = peers
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def fail_orphans(self) -> None:
        """Runs marked running by a process that died are failed, so a new ScoreRound can start."""
        async with self.db.transaction() as conn:
            from sqlalchemy import text

            await conn.execute(
                text(
                    "UPDATE scoring.runs SET state = 'failed', error_message = "
                    "'the scoring process stopped during the run', ended_at = now() "
                    "WHERE state = 'running' AND NOT (run_id = ANY(:mine))"
                ),
                {"mine": list(self.tasks)},
            )

    async def start(self, ref: common_pb2.RoundRef) -> str:
        round_msg = await self.peers.round(ref)
        if round_msg.state not in SCORABLE:
            state = sub_pb.Round.State.Name(round_msg.state).removeprefix("STATE_")
            raise FailedPrecondition(
                f"round {round_msg.round.round_number} is {state}: it can be scored once it is RESOLVED",
                metadata={"current_state": state},
            )
        ref = round_msg.round
        tournament = await self.peers.tournament(ref.tournament_id)
        async with self.db.transaction() as conn:
            existing = await repo.live_run(conn, ref.tournament_id, ref.round_number)
            if existing is not None:
                run_id = existing.run_id
                if existing.state == "running" and run_id not in self.tasks:
                    await repo.update_run(conn, run_id, state="failed", error_message="orphaned run")
                    existing = None
            if existing is None:
                run_id = "r_" + secrets.token_hex(8)
                await repo.insert_run(
                    conn, run_id, ref.tournament_id, ref.round_number, tournament.rules.scoring.meta_model_policy
                )
                self.tasks[run_id] = asyncio.create_task(self._run(run_id, ref, tournament), name=run_id)
        return run_id

    async def wait(self, run_id: str, timeout: float) -> None:
        task = self.tasks.get(run_id)
        if task is not None:
            await asyncio.wait([task], timeout=timeout)

    async def cancel(self, run_id: str) -> None:
        task = self.tasks.get(run_id)
        if task is None:
            async with self.db.connect() as conn:
                row = await repo.get_run(conn, run_id)
            if row is None:
                raise NotFound(f"scoring run {run_id!r} not found")
            if row.state != "running":
                raise FailedPrecondition(
                    f"scoring run {run_id} is {row.state.upper()}: only a running run can be cancelled",
                    metadata={"current_state": row.state.upper()},
                )
            return
        task.cancel()
        await asyncio.wait([task])

    async def _progress(self, run_id: str, phase: str, progress: float, **extra: Any) -> None:
        async with self.db.transaction() as conn:
            await repo.update_run(conn, run_id, phase=phase, progress=progress, **extra)
        log.info("scoring progress", run_id=run_id, phase=phase, progress=round(progress, 2))

    async def _run(self, run_id: str, ref: common_pb2.RoundRef, tournament: Any) -> None:
        try:
            await self._progress(run_id, "reading submissions", 0.05)
            matrix = await self.peers.submissions_matrix(ref)
            target_ids, _, targets = await self.peers.targets(ref)
            if not np.array_equal(target_ids, matrix.ids):
                raise FailedPrecondition("the round's targets and submissions list different rows")
            live = resolved_rows(matrix.splits)
            if not live.any():
                raise FailedPrecondition(f"round {ref.round_number} has no live rows to score")
            stakes = await self.peers.stakes(ref)
            names = await self.peers.model_names(ref.tournament_id)
            await self._progress(run_id, "meta model", 0.2, models_total=len(matrix.model_ids))
            rules = tournament.rules
            inputs = RoundInputs(
                ref=ref,
                model_ids=matrix.model_ids,
                participants=matrix.participants,
                names=names,
                versions=matrix.versions,
                values=matrix.values[:, live],
                targets=targets[live],
                eras=matrix.eras[live],
                stakes=stakes,
                policy=rules.scoring.meta_model_policy,
                binary=tournament.target_kind == common_pb2.TARGET_KIND_BINARY,
                eps=rules.scoring.logloss_epsilon or 1e-15,
                resamples=rules.scoring.bootstrap_samples or 1000,
                confidence=rules.scoring.confidence_level or 0.95,
                logloss_benchmark=rules.consistency.benchmark_logloss or BENCHMARK_LOGLOSS,
            )
            if not np.isfinite(inputs.targets).all():
                raise FailedPrecondition("the round's live targets are not all revealed")
            results = await asyncio.to_thread(compute, inputs)
            rows = [
                {
                    "model_id": s.model.model_id,
                    "participant_id": s.model.participant_id,
                    "sort_logloss": _sort_value(s, "logloss"),
                    "sort_auc": _sort_value(s, "auc"),
                    "sort_corr": _sort_value(s, "corr"),
                    "sort_mmc": _sort_value(s, "mmc"),
                    "scores": s.SerializeToString(deterministic=True),
                }
                for s in results.scores
            ]
            async with self.db.transaction() as conn:
                await repo.store_results(
                    conn,
                    run_id,
                    ref.tournament_id,
                    ref.round_number,
                    rows,
                    results.meta.SerializeToString(deterministic=True),
                )
                await repo.update_run(
                    conn, run_id, phase="marking the round scored", progress=0.95, models_scored=len(rows)
                )
            await self.peers.mark_scored(ref, run_id)
            async with self.db.transaction() as conn:
                await repo.update_run(conn, run_id, state="succeeded", phase="done", progress=1.0)
            log.info("round scored", run_id=run_id, round=ref.round_number, models=len(rows))
        except asyncio.CancelledError:
            async with self.db.transaction() as conn:
                await repo.update_run(conn, run_id, state="cancelled", phase="cancelled")
            raise
        except Exception as exc:
            log.exception("scoring run failed", run_id=run_id)
            message = getattr(exc, "message", None) or "internal error"
            async with self.db.transaction() as conn:
                await repo.update_run(conn, run_id, state="failed", error_message=message[:500])
        finally:
            self.tasks.pop(run_id, None)
