"""Public validation scores of an open round through the Ladder (Blum & Hardt 2015).

The exact validation loss stays private; the displayed score moves only when a new version beats
it by more than one standard error of the per-row loss differences, rounded to that step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from crowdquant.common.v1 import common_pb2
from services.scoring import repository as repo
from services.scoring.domain.ladder import LadderState, ladder_submit
from services.scoring.domain.metrics import per_row_logloss
from services.scoring.peers import F32, Peers
from shared.errors import FailedPrecondition, InvalidArgument


@dataclass
class ValidationRows:
    targets: np.ndarray  # validation rows, row order


class ValidationTargets:
    """Hidden validation targets of open rounds, fetched once per round from submissions."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers
        self._rounds: dict[tuple[str, int], ValidationRows] = {}

    async def get(self, ref: common_pb2.RoundRef) -> ValidationRows:
        key = (ref.tournament_id, ref.round_number)
        rows = self._rounds.get(key)
        if rows is None:
            _, splits, targets = await self.peers.targets(ref)
            rows = ValidationRows(targets[splits == common_pb2.SPLIT_VALIDATION])
            if len(self._rounds) > 16:
                self._rounds.clear()
            self._rounds[key] = rows
        return rows


async def score_validation(conn: Any, targets: ValidationRows, ref: common_pb2.RoundRef, model_id: str,
                           participant_id: str, version: int, values: bytes, eps: float) -> tuple[Any, bool]:
    if len(values) != 4 * len(targets.targets):
        raise InvalidArgument(f"validation_values must hold {len(targets.targets)} float32 values")
    predictions = np.frombuffer(values, dtype=F32).astype(np.float64)
    if not np.isfinite(targets.targets).all():
        raise FailedPrecondition("the round's validation targets are not known")
    current = await repo.get_ladder(conn, ref.tournament_id, ref.round_number, model_id)
    if current is not None and version <= current.last_version:
        return current, False
    state = LadderState() if current is None else LadderState(
        displayed=current.displayed, step=current.step,
        leader_losses=np.frombuffer(bytes(current.leader_losses), dtype=np.float64),
        submissions=current.versions_scored)
    losses = per_row_logloss(predictions, targets.targets, eps=eps)
    decision = ladder_submit(state, losses)
    new = decision.state
    assert new.displayed is not None and new.step is not None and new.leader_losses is not None
    await repo.upsert_ladder(
        conn, tournament_id=ref.tournament_id, round_number=ref.round_number, model_id=model_id,
        participant_id=participant_id, version=version if decision.changed else current.version,
        displayed=new.displayed, step=new.step, leader_losses=np.asarray(new.leader_losses).tobytes(),
        versions_scored=new.submissions, last_version=version, exact_mean=decision.mean_loss)
    return await repo.get_ladder(conn, ref.tournament_id, ref.round_number, model_id), decision.changed
