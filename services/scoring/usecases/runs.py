"""Scoring runs: one per resolved round, resumable, cancellable, and identical when repeated.

A run is a task in this process; its state (and progress) is in ``scoring.runs``. A second
ScoreRound of the same round with the same stakes joins the running or succeeded run; with other
stakes it replaces a succeeded run (the earlier one is marked superseded) and is refused while one
runs. A run left "running" by a crashed process is failed on start so the next ScoreRound starts
afresh.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import numpy as np

from services.scoring.domain.eras import BENCHMARK_LOGLOSS
from services.scoring.domain.results import RoundInputs, ScoredRound, resolved_rows
from services.scoring.peers import Peers, TournamentRules
from services.scoring.store import scores as repo
from shared.db import Database
from shared.errors import FailedPrecondition, InvalidArgument, NotFound
from shared.logging import get_logger
from shared.rounds import RoundKey

log = get_logger("crowdquant.scoring")
SCORABLE = ("RESOLVED", "SCORED", "PAID")


def check_stakes(stakes: dict[str, int]) -> dict[str, int]:
    """Stakes as ScoreRound takes them: whole satoshis, none negative."""
    for model_id, amount in stakes.items():
        if not model_id:
            raise InvalidArgument("stakes: every stake names a model_id", metadata={"field": "stakes"})
        if amount < 0:
            raise InvalidArgument(
                f"stakes: model {model_id} has a negative stake ({amount})", metadata={"field": "stakes"}
            )
    return stakes


class Runner:
    """Scoring runs; ``encode`` turns a round's inputs into the records stored (the api layer's ``encode``)."""

    def __init__(self, database: Database, peers: Peers, encode: Callable[[RoundInputs], ScoredRound]) -> None:
        self.db = database
        self.peers = peers
        self.encode = encode
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def fail_orphans(self) -> None:
        """Runs marked running by a process that died are failed, so a new ScoreRound can start."""
        async with self.db.transaction() as conn:
            await repo.fail_orphan_runs(conn, list(self.tasks))

    async def start(self, key: RoundKey, stakes: dict[str, int]) -> str:
        found = await self.peers.round(key)
        if found.state not in SCORABLE:
            raise FailedPrecondition(
                f"round {key.number} is {found.state}: it can be scored once it is RESOLVED",
                metadata={"current_state": found.state},
            )
        tournament = await self.peers.rules(key.tournament_id)
        async with self.db.transaction() as conn:
            existing = await repo.live_run(conn, key.tournament_id, key.number)
            if existing is not None:
                run_id = existing.run_id
                if existing.state == "running" and run_id not in self.tasks:
                    await repo.update_run(conn, run_id, state="failed", error_message="orphaned run")
                    existing = None
                elif existing.stakes != repo.stakes_text(stakes):
                    if existing.state == "running":
                        raise FailedPrecondition(
                            f"scoring run {run_id} is scoring {key} with other stakes: wait for it or cancel it",
                            metadata={"run_id": run_id},
                        )
                    await repo.update_run(
                        conn,
                        run_id,
                        state="failed",
                        error_message="superseded: the round was scored again with other stakes",
                    )
                    existing = None
            if existing is None:
                run_id = "r_" + secrets.token_hex(8)
                await repo.insert_run(conn, run_id, key.tournament_id, key.number, tournament.policy, stakes)
                self.tasks[run_id] = asyncio.create_task(self._run(run_id, key, tournament, stakes), name=run_id)
        return run_id

    async def get(self, run_id: str) -> Any:
        """A run's stored row; NOT_FOUND naming the id."""
        if not run_id:
            raise InvalidArgument("run_id is required", metadata={"field": "run_id"})
        async with self.db.connect() as conn:
            row = await repo.get_run(conn, run_id)
        if row is None:
            raise NotFound(f"scoring run {run_id!r} not found", metadata={"run_id": run_id})
        return row

    async def wait(self, run_id: str, timeout: float) -> None:
        task = self.tasks.get(run_id)
        if task is not None:
            await asyncio.wait([task], timeout=timeout)

    async def cancel(self, run_id: str) -> None:
        task = self.tasks.get(run_id)
        if task is None:
            row = await self.get(run_id)
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

    async def _run(self, run_id: str, key: RoundKey, tournament: TournamentRules, stakes: dict[str, int]) -> None:
        try:
            await self._progress(run_id, "reading submissions", 0.05)
            matrix = await self.peers.submissions_matrix(key)
            target_ids, _, targets = await self.peers.targets(key)
            if not np.array_equal(target_ids, matrix.ids):
                raise FailedPrecondition("the round's targets and submissions list different rows")
            assert matrix.values is not None
            live = resolved_rows(matrix.splits)
            if not live.any():
                raise FailedPrecondition(f"round {key.number} has no live rows to score")
            names = await self.peers.model_names(key.tournament_id)
            await self._progress(run_id, "meta model", 0.2, models_total=len(matrix.model_ids))
            inputs = RoundInputs(
                key=key,
                model_ids=matrix.model_ids,
                participants=matrix.participants,
                names=names,
                versions=matrix.versions,
                values=matrix.values[:, live],
                targets=targets[live],
                eras=matrix.eras[live],
                stakes=stakes,
                policy=tournament.policy,
                binary=tournament.binary,
                eps=tournament.logloss_epsilon or 1e-15,
                resamples=tournament.bootstrap_samples or 1000,
                confidence=tournament.confidence_level or 0.95,
                logloss_benchmark=tournament.benchmark_logloss or BENCHMARK_LOGLOSS,
            )
            if not np.isfinite(inputs.targets).all():
                raise FailedPrecondition("the round's live targets are not all revealed")
            scored = await asyncio.to_thread(self.encode, inputs)
            rows = [
                {
                    "model_id": m.model_id,
                    "participant_id": m.participant_id,
                    **{f"sort_{name}": m.sort.get(name) for name in ("logloss", "auc", "corr", "mmc")},
                    "scores": m.record,
                }
                for m in scored.models
            ]
            async with self.db.transaction() as conn:
                await repo.store_results(conn, run_id, key.tournament_id, key.number, rows, scored.meta_record)
                await repo.update_run(
                    conn, run_id, phase="marking the round scored", progress=0.95, models_scored=len(rows)
                )
            await self.peers.mark_scored(key, run_id)
            async with self.db.transaction() as conn:
                await repo.update_run(conn, run_id, state="succeeded", phase="done", progress=1.0)
            log.info("round scored", run_id=run_id, round=key.number, models=len(rows))
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
