"""The scoring service's peers: submissions (rows, submissions, targets, models) and payouts (stakes).

Channels open lazily, so addresses set after start-up (tests, the demo) are honoured; every call
has a deadline and retries transient failures with the same request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from shared.errors import FailedPrecondition, NotFound, Unavailable
from shared.rpc.client import call_metadata
from shared.rpc.peers import PeerChannels

F32 = np.dtype("<f4")


@dataclass
class RoundMatrix:
    """A round's tournament rows and every model's latest submission, in row order."""

    ids: np.ndarray
    eras: np.ndarray  # int
    splits: np.ndarray  # common_pb2.Split values
    model_ids: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    submissions: list[sub_pb.Submission] = field(default_factory=list)
    values: np.ndarray | None = None  # (n_models, n_rows) float32


@dataclass(frozen=True)
class StoredUpload:
    """One accepted upload as submissions stores it: its record and canonical bytes (all scored rows)."""

    record: sub_pb.Submission
    values: bytes


def era_numbers(labels: list[str]) -> np.ndarray:
    return np.asarray(
        [int(e.removeprefix("era")) if e.removeprefix("era").isdigit() else 0 for e in labels], dtype=np.int64
    )


class Peers(PeerChannels):
    """Scoring's peers: rows, submissions and targets from submissions; stakes from payouts."""

    async def round(self, ref: common_pb2.RoundRef) -> sub_pb.Round:
        return (await self.unary(self.submissions.GetRound, sub_pb.GetRoundRequest(round=ref))).round

    async def tournament(self, tournament_id: str) -> sub_pb.Tournament:
        return (
            await self.unary(self.submissions.GetTournament, sub_pb.GetTournamentRequest(tournament_id=tournament_id))
        ).tournament

    async def model_names(self, tournament_id: str) -> dict[str, str]:
        names: dict[str, str] = {}
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListModels,
                sub_pb.ListModelsRequest(tournament_id=tournament_id, page_size=1000, page_token=token),
            )
            names.update({m.model_id: m.display_name for m in resp.models})
            token = resp.next_page_token
            if not token:
                return names

    async def _stream(self, fn: Any, request: Any) -> Any:
        try:
            async for message in fn(
                request, metadata=call_metadata(self.key), timeout=self.settings.rpc_deadline_seconds * 10
            ):
                yield message
        except grpc.aio.AioRpcError as exc:
            from shared.rpc.status import from_rpc_error

            raise from_rpc_error(exc) from exc

    async def targets(self, ref: common_pb2.RoundRef) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids, split and targets of the tournament rows (live targets NaN before resolve)."""
        ids, splits, targets = [], [], []
        async for m in self._stream(self.submissions.StreamRoundTargets, sub_pb.StreamRoundTargetsRequest(round=ref)):
            ids += m.chunk.ids.decode().split("\n")
            splits += list(m.chunk.splits)
            targets.append(np.frombuffer(m.chunk.targets, dtype=F32))
        if not ids:
            raise NotFound("the round has no rows")
        return np.asarray(ids), np.asarray(splits), np.concatenate(targets).astype(np.float64)

    async def upload(self, ref: common_pb2.RoundRef, model_id: str, version: int) -> StoredUpload:
        """One stored upload's record and values, read from submissions (never taken from a caller)."""
        record: sub_pb.Submission | None = None
        values = bytearray()
        async for m in self._stream(
            self.submissions.StreamRoundSubmissions,
            sub_pb.StreamRoundSubmissionsRequest(round=ref, model_id=model_id, version=version),
        ):
            chunk = m.submission_chunk
            if chunk.HasField("submission"):
                record = chunk.submission
            values += chunk.values
        if record is None:
            raise NotFound(
                f"no stored upload of model {model_id!r} v{version} in round {ref.round_number}",
                metadata={"model_id": model_id},
            )
        return StoredUpload(record, bytes(values))

    async def submissions_matrix(self, ref: common_pb2.RoundRef) -> RoundMatrix:
        ids: list[str] = []
        eras: list[str] = []
        splits: list[int] = []
        rows: list[np.ndarray] = []
        current: bytearray | None = None
        result: RoundMatrix | None = None
        async for m in self._stream(
            self.submissions.StreamRoundSubmissions, sub_pb.StreamRoundSubmissionsRequest(round=ref)
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
                result.submissions.append(c.submission)
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

    async def stakes(self, ref: common_pb2.RoundRef) -> dict[str, int]:
        """Stakes at risk in the round; empty when nobody staked (equal weights then).

        Payouts unreachable is not "nobody staked": the meta model would be weighted wrongly, so the
        run fails with UNAVAILABLE and is retried once payouts is back.
        """
        try:
            # patient (about 10 s of retries): a restarting payouts should not cost a whole scoring run
            resp = await self.unary(
                self.payouts.GetRoundStakes, po_pb.GetRoundStakesRequest(round=ref), deadline=10, attempts=7
            )
        except Unavailable as exc:
            raise Unavailable(
                f"payouts is unreachable, so the stakes of round {ref.round_number} are unknown; "
                f"score the round again once payouts is back ({exc.message})"
            ) from exc
        except NotFound:
            return {}
        return {s.model_id: s.stake_satoshis for s in resp.stakes}

    async def mark_scored(self, ref: common_pb2.RoundRef, run_id: str) -> None:
        await self.unary(
            self.submissions.MarkRoundScored,
            sub_pb.MarkRoundScoredRequest(
                request_id=f"scored:{ref.tournament_id}:{ref.round_number}:{run_id}", round=ref, scoring_run_id=run_id
            ),
        )
