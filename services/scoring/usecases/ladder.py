"""Public validation scores of an open round through the Ladder (Blum & Hardt 2015).

Scoring never accepts scores or predictions from its caller: it judges stored uploads only, reading
each one's values from submissions and checking their hash first. Uploads are pulled, not pushed:
reading a round's public scores first judges every upload accepted since the last read, in the order
submissions accepted them (ScoreValidation judges one named upload the same way). The exact
validation loss and the Ladder's step stay private; the displayed score moves only when a version
beats its participant's leader by more than one standard error of the per-row loss differences, and
is rounded to a fixed grid.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from crowdquant.formats.dataset import Split
from services.scoring.domain.ladder import LadderState, ladder_submit
from services.scoring.domain.metrics import per_row_logloss
from services.scoring.peers import Peers, StoredUpload
from services.scoring.store import scores as repo
from shared.db import Database
from shared.errors import FailedPrecondition, InvalidArgument
from shared.logging import get_logger
from shared.rounds import RoundKey

log = get_logger("crowdquant.scoring.ladder")


@dataclass
class ValidationRows:
    mask: np.ndarray  # which of the round's scored rows are validation rows
    targets: np.ndarray  # their targets, in row order


class ValidationTargets:
    """Hidden validation targets of open rounds, fetched once per round from submissions."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers
        self._rounds: dict[tuple[str, int], ValidationRows] = {}

    async def get(self, key: RoundKey) -> ValidationRows:
        rows = self._rounds.get((key.tournament_id, key.number))
        if rows is None:
            _, splits, targets = await self.peers.targets(key)
            mask = splits == Split.VALIDATION
            rows = ValidationRows(mask, targets[mask])
            if len(self._rounds) > 16:
                self._rounds.clear()
            self._rounds[(key.tournament_id, key.number)] = rows
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
    conn: Any,
    rows: ValidationRows,
    key: RoundKey,
    upload: StoredUpload,
    predictions: np.ndarray,
    eps: float,
    store: Any = repo,
) -> tuple[Any, bool]:
    """Judge one stored version against its participant's Ladder; a version judged before changes nothing."""
    if not np.isfinite(rows.targets).all():
        raise FailedPrecondition("the round's validation targets are not known")
    record = upload.record
    t, n = key.tournament_id, key.number
    level = await store.lock_ladder_level(conn, t, n, record.participant_id)
    current = await store.get_ladder(conn, t, n, record.model_id)
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
    await store.upsert_ladder_level(
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
    await store.upsert_ladder(
        conn,
        tournament_id=t,
        round_number=n,
        model_id=record.model_id,
        participant_id=record.participant_id,
        version=record.version if decision.changed else None,
        displayed=new.displayed if decision.changed else None,
        last_version=record.version,
    )
    return await store.get_ladder(conn, t, n, record.model_id), decision.changed


def require_sha256(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidArgument(
            "content_sha256 must be the upload's hex SHA-256 (64 lowercase hex digits)",
            metadata={"field": "content_sha256"},
        )
    return value


class PublicBoard:
    """The Ladder board of open rounds: judging stored uploads, and reading the public scores."""

    def __init__(self, database: Database, peers: Peers, store: Any = repo) -> None:
        self.db = database
        self.peers = peers
        self.store = store  # the scoring store's Ladder queries (a fake in unit tests)
        self.validation = ValidationTargets(peers)
        self._locks: dict[tuple[str, int], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def judge(self, key: RoundKey, model_id: str, version: int, content_sha256: str) -> tuple[Any, bool]:
        """Judge one stored upload (model, version, hash); its public row and whether the board moved."""
        if not model_id or version < 1:
            raise InvalidArgument("model_id and version >= 1 are required")
        require_sha256(content_sha256)
        async with self._locks[(key.tournament_id, key.number)]:
            return await self._judge(key, model_id, version, content_sha256)

    async def _judge(self, key: RoundKey, model_id: str, version: int, content_sha256: str) -> tuple[Any, bool]:
        rows = await self.validation.get(key)
        upload = await self.peers.upload(key, model_id, version)
        predictions = check_upload(upload, content_sha256, rows)
        eps = (await self.peers.rules(key.tournament_id)).logloss_epsilon or 1e-15
        async with self.db.transaction() as conn:
            return await score_validation(conn, rows, key, upload, predictions, eps, self.store)

    async def catch_up(self, key: RoundKey) -> int:
        """Judge every upload of the round accepted since the last look, in the order accepted.

        One look at a time per round (in this process; the Ladder's row locks keep several processes
        consistent, and a version judged before changes nothing).
        """
        async with self._locks[(key.tournament_id, key.number)]:
            accepted = await self.peers.accepted(key)
            async with self.db.connect() as conn:
                judged = await self.store.ladder_versions(conn, key.tournament_id, key.number)
            fresh = [u for u in accepted if u.version > judged.get(u.model_id, 0)]
            for upload in fresh:
                await self._judge(key, upload.model_id, upload.version, upload.content_sha256)
                judged[upload.model_id] = upload.version
            if fresh:
                log.info("ladder caught up", round=key.number, judged=len(fresh))
            return len(fresh)

    async def public_scores(self, key: RoundKey, after: Any, limit: int) -> list[Any]:
        """The round's public rows, best first, after judging what is new."""
        await self.catch_up(key)
        async with self.db.connect() as conn:
            return await self.store.list_ladder(conn, key.tournament_id, key.number, True, after, limit)
