"""Public validation scores of an open round through the Ladder (Blum & Hardt 2015).

Scoring never accepts scores or predictions from its caller: ScoreValidation names a stored upload
(model, version, content hash), and scoring reads that upload's values from submissions and checks
their hash before judging them. The exact validation loss and the Ladder's step stay private; the
displayed score moves only when a version beats its participant's leader by more than one standard
error of the per-row loss differences, and is rounded to a fixed grid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from crowdquant.common.v1 import common_pb2
from services.scoring.domain.ladder import LadderState, ladder_submit
from services.scoring.domain.metrics import per_row_logloss
from services.scoring.peers import Peers, StoredUpload
from services.scoring.store import scores as repo
from shared.errors import FailedPrecondition, InvalidArgument


@dataclass
class ValidationRows:
    mask: np.ndarray  # which of the round's scored rows are validation rows
    targets: np.ndarray  # their targets, in row order


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
            mask = splits == common_pb2.SPLIT_VALIDATION
            rows = ValidationRows(mask, targets[mask])
            if len(self._rounds) > 16:
                self._rounds.clear()
            self._rounds[key] = rows
        return rows


def check_upload(upload: StoredUpload, content_sha256: str, rows: ValidationRows) -> np.ndarray:
    """The stored upload's validation predictions, once its bytes are the ones the caller named."""
    if upload.record.content_sha256 != content_sha256:
        raise FailedPrecondition(
            f"model {upload.record.model_id} v{upload.record.version} is stored with content_sha256 "
            f"{upload.record.content_sha256}, not {content_sha256}",
            metadata={"field": "content_sha256"},
        )
    if hashlib.sha256(upload.values).hexdigest() != content_sha256:
        raise FailedPrecondition(
            f"the stored bytes of model {upload.record.model_id} v{upload.record.version} do not match its content hash"
        )
    if len(upload.values) != 4 * len(rows.mask):
        raise FailedPrecondition(
            f"the stored upload holds {len(upload.values) // 4} values; the round scores {len(rows.mask)} rows"
        )
    return np.frombuffer(upload.values, dtype="<f4")[rows.mask].astype(np.float64)


async def score_validation(
    conn: Any, rows: ValidationRows, ref: common_pb2.RoundRef, upload: StoredUpload, predictions: np.ndarray, eps: float
) -> tuple[Any, bool]:
    """Judge one stored version against its participant's Ladder; a version judged before changes nothing."""
    if not np.isfinite(rows.targets).all():
        raise FailedPrecondition("the round's validation targets are not known")
    record = upload.record
    t, n = ref.tournament_id, ref.round_number
    level = await repo.lock_ladder_level(conn, t, n, record.participant_id)
    current = await repo.get_ladder(conn, t, n, record.model_id)
    if current is not None and record.version <= current.last_version:
        return current, False
    state = (
        LadderState()
        if level is None
        else LadderState(
            displayed=level.displayed,
            leader_mean=level.leader_mean,
            step=level.step,
            leader_losses=np.frombuffer(bytes(level.leader_losses), dtype=np.float64),
            submissions=level.submissions,
        )
    )
    decision = ladder_submit(state, per_row_logloss(predictions, rows.targets, eps=eps))
    new = decision.state
    assert new.displayed is not None and new.leader_mean is not None and new.step is not None
    assert new.leader_losses is not None
    leader = (record.model_id, record.version) if decision.changed else (level.leader_model_id, level.leader_version)
    await repo.upsert_ladder_level(
        conn,
        tournament_id=t,
        round_number=n,
        participant_id=record.participant_id,
        displayed=new.displayed,
        leader_mean=new.leader_mean,
        step=new.step,
        leader_losses=np.asarray(new.leader_losses).tobytes(),
        leader_model_id=leader[0],
        leader_version=leader[1],
        submissions=new.submissions,
    )
    await repo.upsert_ladder(
        conn,
        tournament_id=t,
        round_number=n,
        model_id=record.model_id,
        participant_id=record.participant_id,
        version=record.version if decision.changed else None,
        displayed=new.displayed if decision.changed else None,
        last_version=record.version,
    )
    return await repo.get_ladder(conn, t, n, record.model_id), decision.changed


def require_sha256(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidArgument(
            "content_sha256 must be the upload's hex SHA-256 (64 lowercase hex digits)",
            metadata={"field": "content_sha256"},
        )
    return value
