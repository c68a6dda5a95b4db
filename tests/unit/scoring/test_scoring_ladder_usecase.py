"""The Ladder use case on in-memory fakes of the store, the database and submissions.

Scoring pulls accepted uploads: reading the public scores judges every upload accepted since the
last look, each version once, in the order submissions accepted them; a stored upload whose bytes
do not match its hash is refused. (The same use case runs against real Postgres and gRPC in
``tests/integration/scoring`` and ``tests/integration/security/test_hidden_targets.py``.)
"""

from __future__ import annotations

import hashlib
from contextlib import asynccontextmanager
from types import SimpleNamespace

import numpy as np
import pytest

from crowdquant.formats.dataset import Split
from services.scoring.peers import StoredUpload, TournamentRules, UploadRecord
from services.scoring.usecases.ladder import PublicBoard
from shared.errors import FailedPrecondition
from shared.rounds import RoundKey

KEY = RoundKey("t", 1)
ROWS = 400


class FakeDatabase:
    @asynccontextmanager
    async def transaction(self):
        yield None

    connect = transaction


class FakeStore:
    """The Ladder's rows as the scoring store keeps them (the same upsert rules)."""

    def __init__(self) -> None:
        self.levels: dict[str, SimpleNamespace] = {}
        self.models: dict[str, SimpleNamespace] = {}

    async def lock_ladder_level(self, conn, t, n, participant_id):
        return self.levels.get(participant_id)

    async def get_ladder(self, conn, t, n, model_id):
        return self.models.get(model_id)

    async def upsert_ladder_level(self, conn, **values):
        self.levels[values["participant_id"]] = SimpleNamespace(**values)

    async def upsert_ladder(self, conn, **values):
        row = self.models.get(values["model_id"])
        if row is None:
            self.models[values["model_id"]] = SimpleNamespace(**values, versions_scored=1)
            return
        row.version = values["version"] if values["version"] is not None else row.version
        row.displayed = values["displayed"] if values["displayed"] is not None else row.displayed
        row.versions_scored += 1
        row.last_version = values["last_version"]

    async def ladder_versions(self, conn, t, n):
        return {m: r.last_version for m, r in self.models.items()}

    async def list_ladder(self, conn, t, n, ascending, after, limit):
        shown = [r for r in self.models.values() if r.displayed is not None]
        return sorted(shown, key=lambda r: (r.displayed, r.model_id))[:limit]


class FakeSubmissions:
    """Submissions as scoring's peers see it: rows, targets, and uploads in the order accepted."""

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.splits = np.where(np.arange(ROWS) < ROWS // 2, Split.VALIDATION, Split.LIVE)
        self.truth = rng.integers(0, 2, ROWS).astype(np.float64)
        self.uploads: list[StoredUpload] = []
        self.read: list[tuple[str, int]] = []

    def accept(self, model_id: str, participant_id: str, values: np.ndarray, corrupt: bool = False) -> None:
        data = values.astype("<f4").tobytes()
        version = 1 + sum(u.record.model_id == model_id for u in self.uploads)
        digest = hashlib.sha256(b"other" if corrupt else data).hexdigest()
        self.uploads.append(StoredUpload(UploadRecord(model_id, participant_id, version, digest), data))

    async def targets(self, key):
        return np.arange(ROWS).astype(str), self.splits, self.truth

    async def rules(self, tournament_id):
        return TournamentRules(True, 0, 1e-15, 1000, 0.95, 0.0)

    async def accepted(self, key):
        return [u.record for u in self.uploads]

    async def upload(self, key, model_id, version):
        self.read.append((model_id, version))
        return next(u for u in self.uploads if (u.record.model_id, u.record.version) == (model_id, version))


def predictions(submissions: FakeSubmissions, skill: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, ROWS)
    return np.clip(0.5 + skill * (submissions.truth - 0.5) + 0.05 * noise, 0.01, 0.99)


@pytest.fixture
def board() -> tuple[PublicBoard, FakeSubmissions, FakeStore]:
    submissions, store = FakeSubmissions(), FakeStore()
    return PublicBoard(FakeDatabase(), submissions, store), submissions, store  # type: ignore[arg-type]


async def test_reading_judges_each_new_upload_once_in_the_order_accepted(board):
    public, submissions, store = board
    submissions.accept("m_a", "p_1", predictions(submissions, 0.2, 1))
    submissions.accept("m_b", "p_2", predictions(submissions, 0.1, 2))
    rows = await public.public_scores(KEY, None, 10)
    assert submissions.read == [("m_a", 1), ("m_b", 1)]
    assert {r.model_id for r in rows} == {"m_a", "m_b"}

    submissions.accept("m_a", "p_1", predictions(submissions, 0.3, 3))
    await public.public_scores(KEY, None, 10)
    await public.public_scores(KEY, None, 10)  # nothing new: nothing read again
    assert submissions.read == [("m_a", 1), ("m_b", 1), ("m_a", 2)]
    assert store.models["m_a"].last_version == 2 and store.models["m_a"].versions_scored == 2


async def test_an_upload_whose_bytes_differ_from_its_hash_is_refused(board):
    public, submissions, store = board
    submissions.accept("m_a", "p_1", predictions(submissions, 0.2, 1), corrupt=True)
    with pytest.raises(FailedPrecondition, match="do not match its content hash"):
        await public.public_scores(KEY, None, 10)
    assert store.models == {} and store.levels == {}
