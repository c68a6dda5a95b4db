"""The scoring service's only peer: submissions (rounds, rules, rows, targets, models and uploads).

Scoring calls nothing downstream of it: stakes come with ScoreRound and publication with
MarkRoundPublished. Every call has a deadline and retries transient failures with the same
request; answers come back as plain values, never as protobuf messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from shared.errors import FailedPrecondition, NotFound
from shared.rounds import RoundKey
from shared.rpc.client import call_metadata
from shared.rpc.peers import PeerChannels

F32 = np.dtype("<f4")
PAGE = 1000


@dataclass(frozen=True)
class RoundInfo:
    key: RoundKey
    state: str  # the round's lifecycle state, e.g. "RESOLVED"


@dataclass(frozen=True)
class TournamentRules:
    """What a scoring run needs of a tournament's rules (zeros where the rules leave a default)."""

    binary: bool
    policy: int  # common.v1 MetaModelPolicy value
    logloss_epsilon: float
    bootstrap_samples: int
    confidence_level: float
    benchmark_logloss: float


@dataclass(frozen=True)
class UploadRecord:
    """An accepted upload as submissions lists it."""

    model_id: str
    participant_id: str
    version: int
    content_sha256: str


@dataclass
class RoundMatrix:
    """A round's tournament rows and every model's latest submission, in row order."""

    ids: np.ndarray
    eras: np.ndarray  # int
    splits: np.ndarray  # crowdquant.formats.dataset.Split values
    model_ids: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    values: np.ndarray | None = None  # (n_models, n_rows) float32


@dataclass(frozen=True)
class StoredUpload:
    """One accepted upload as submissions stores it: its record and canonical bytes (all scored rows)."""

    record: UploadRecord
    values: bytes


def era_numbers(labels: list[str]) -> np.ndarray:
    return np.asarray(
        [int(e.removeprefix("era")) if e.removeprefix("era").isdigit() else 0 for e in labels], dtype=np.int64
    )


def ref(key: RoundKey) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=key.tournament_id, round_number=key.number)


def record(submission: Any) -> UploadRecord:
    return UploadRecord(submission.model_id, submission.participant_id, submission.version, submission.content_sha256)


class Peers(PeerChannels):
    """Rounds, rules, rows, targets, models and stored uploads, read from submissions."""

    CALLS = ("submissions",)

    async def round(self, key: RoundKey) -> RoundInfo:
        found = (await self.unary(self.submissions.GetRound, sub_pb.GetRoundRequest(round=ref(key)))).round
        return RoundInfo(
            RoundKey(found.round.tournament_id, found.round.round_number),
            sub_pb.Round.State.Name(found.state).removeprefix("STATE_"),
        )

    async def rules(self, tournament_id: str) -> TournamentRules:
        found = (
            await self.unary(self.submissions.GetTournament, sub_pb.GetTournamentRequest(tournament_id=tournament_id))
        ).tournament
        rules = found.rules
        return TournamentRules(
            binary=found.target_kind == common_pb2.TARGET_KIND_BINARY,
            policy=rules.scoring.meta_model_policy,
            logloss_epsilon=rules.scoring.logloss_epsilon,
            bootstrap_samples=rules.scoring.bootstrap_samples,
            confidence_level=rules.scoring.confidence_level,
            benchmark_logloss=rules.consistency.benchmark_logloss,
        )

    async def model_names(self, tournament_id: str) -> dict[str, str]:
        names: dict[str, str] = {}
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListModels,
                sub_pb.ListModelsRequest(tournament_id=tournament_id, page_size=PAGE, page_token=token),
            )
            names.update({m.model_id: m.display_name for m in resp.models})
            token = resp.next_page_token
            if not token:
                return names

    async def accepted(self, key: RoundKey) -> list[UploadRecord]:
        """Every accepted upload of the round, every version, in the order submissions accepted them."""
        found: list[UploadRecord] = []
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListSubmissions,
                sub_pb.ListSubmissionsRequest(round=ref(key), page_size=PAGE, page_token=token),
            )
            found += [record(s) for s in resp.submissions]
            token = resp.next_page_token
            if not token:
                return found

    async def _stream(self, fn: Any, request: Any) -> AsyncIterator[Any]:
        try:
            async for message in fn(
                request, metadata=call_metadata(self.key), timeout=self.settings.rpc_deadline_seconds * 10
            ):
                yield message
        except grpc.aio.AioRpcError as exc:
            from shared.rpc.status import from_rpc_error

            raise from_rpc_error(exc) from exc

    async def targets(self, key: RoundKey) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids, split and targets of the tournament rows (live targets NaN before resolve)."""
        ids, splits, targets = [], [], []
        request = sub_pb.StreamRoundTargetsRequest(round=ref(key))
        async for m in self._stream(self.submissions.StreamRoundTargets, request):
            ids += m.chunk.ids.decode().split("\n")
            splits += list(m.chunk.splits)
            targets.append(np.frombuffer(m.chunk.targets, dtype=F32))
        if not ids:
            raise NotFound("the round has no rows")
        return np.asarray(ids), np.asarray(splits), np.concatenate(targets).astype(np.float64)

    async def upload(self, key: RoundKey, model_id: str, version: int) -> StoredUpload:
        """One stored upload's record and values, read from submissions (never taken from a caller)."""
        found: UploadRecord | None = None
        values = bytearray()
        async for m in self._stream(
            self.submissions.StreamRoundSubmissions,
            sub_pb.StreamRoundSubmissionsRequest(round=ref(key), model_id=model_id, version=version),
        ):
            chunk = m.submission_chunk
            if chunk.HasField("submission"):
                found = record(chunk.submission)
            values += chunk.values
        if found is None:
            raise NotFound(
                f"no stored upload of model {model_id!r} v{version} in round {key.number}",
                metadata={"model_id": model_id},
            )
        return StoredUpload(found, bytes(values))

    async def submissions_matrix(self, key: RoundKey) -> RoundMatrix:
        ids: list[str] = []
        eras: list[str] = []
        splits: list[int] = []
        rows: list[np.ndarray] = []
        current: bytearray | None = None
        result: RoundMatrix | None = None
        async for m in self._stream(
            self.submissions.StreamRoundSubmissions, sub_pb.StreamRoundSubmissionsRequest(round=ref(key))
        ):
            if m.WhichOneof("kind") == "rows":
                ids += m.rows.ids.decode().split("\n")
                eras += m.rows.eras.decode().split("\n")
                splits += list(m.rows.splits)
                continue
            if result is None:
                result = RoundMatrix(np.asarray(ids), era_numbers(eras), np.asarray(splits))
            c = m.submission_chunk
            if c.HasField("submission"):
                if current is not None:
                    rows.append(np.frombuffer(bytes(current), dtype=F32))
                current = bytearray()
                result.model_ids.append(c.model_id)
                result.participants.append(c.participant_id)
                result.versions.append(c.version)
            assert current is not None
            current += c.values
        if result is None:
            result = RoundMatrix(np.asarray(ids), era_numbers(eras), np.asarray(splits))
        if current is not None:
            rows.append(np.frombuffer(bytes(current), dtype=F32))
        if any(len(r) != len(result.ids) for r in rows):
            raise FailedPrecondition("a submission's values do not cover the round's rows")
        result.values = np.vstack(rows) if rows else np.zeros((0, len(result.ids)), dtype=F32)
        return result

    async def mark_scored(self, key: RoundKey, run_id: str) -> None:
        await self.unary(
            self.submissions.MarkRoundScored,
            sub_pb.MarkRoundScoredRequest(
                request_id=f"scored:{key.tournament_id}:{key.number}:{run_id}", round=ref(key), scoring_run_id=run_id
            ),
        )
