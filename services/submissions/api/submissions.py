"""SubmissionsService: tournaments, rounds and data, models, uploads and receipts. Thin adapter."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.formats import receipts
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from services.submissions.domain.dataset import Split
from services.submissions.domain.state import RoundState
from services.submissions.domain.upload_stream import UploadAssembler
from services.submissions.store import models as models_repo
from services.submissions.store import rounds as repo
from services.submissions.store import uploads as uploads_repo
from services.submissions.store.round_data import F32, PackedRound, RoundCache, era_labels, pack_strings
from services.submissions.store.tables import SCHEMA
from services.submissions.usecases import models as model_handlers
from services.submissions.usecases import rounds as handlers
from services.submissions.usecases import uploads
from shared.auth import ANONYMOUS, Role, Scope, ServiceName
from shared.db import Database
from shared.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from shared.idempotency import run_once
from shared.pagination import decode_token, encode_token, page_size
from shared.rpc.context import optional_principal, principal
from shared.rpc.convert import timestamp
from shared.rpc.ratelimit import StreamSlots, TokenBuckets

SERVICE = pb.DESCRIPTOR.services_by_name["SubmissionsService"].full_name
P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
_, SCORING, LEADERBOARD, PAYOUTS = (name.identity for name in ServiceName)
PEOPLE = {P, O, A}
# Each service identity is listed only where that service calls (services/*/peers.py): the hidden
# targets of a round go to scoring alone, whatever the round's state.
ACCESS = {
    "CreateTournament": {O},
    "GetTournament": {*PEOPLE, SCORING, LEADERBOARD, PAYOUTS},
    "ListTournaments": {*PEOPLE, LEADERBOARD},
    "UploadDataset": {O},
    "OpenRound": {O},
    "CloseRound": {O},
    "ResolveRound": {O},
    "MarkRoundScored": {O, SCORING},
    "MarkRoundPaid": {O, PAYOUTS},
    "GetRound": {*PEOPLE, SCORING, LEADERBOARD, PAYOUTS},
    "ListRounds": {*PEOPLE, PAYOUTS},
    "GetRoundCommitment": PEOPLE,
    "DownloadRoundData": {P, O},
    "DownloadTargets": PEOPLE,
    "CreateModel": {P, O},
    "GetModel": {*PEOPLE, PAYOUTS},
    "ListModels": {*PEOPLE, SCORING, LEADERBOARD, PAYOUTS},
    "UpdateModelPayoutAddress": {P, O},
    "UploadPredictions": {P},
    "GetSubmission": {*PEOPLE, PAYOUTS},
    "ListSubmissions": {*PEOPLE, SCORING, PAYOUTS},
    "GetReceiptPublicKey": {ANONYMOUS, *PEOPLE},
    "StreamRoundSubmissions": {O, SCORING},
    "StreamRoundTargets": {SCORING},
}
# The scope each RPC needs (shared.auth.Scope): reads need read; what moves money needs stake.
SCOPES = {
    **dict.fromkeys(ACCESS, Scope.READ),
    **dict.fromkeys(
        (
            "CreateTournament",
            "UploadDataset",
            "OpenRound",
            "CloseRound",
            "ResolveRound",
            "MarkRoundScored",
            "MarkRoundPaid",
        ),
        Scope.OPERATE,
    ),
    "CreateModel": Scope.SUBMIT,
    "UploadPredictions": Scope.SUBMIT,
    "UpdateModelPayoutAddress": Scope.STAKE,
}
DEFAULT_CHUNK_ROWS = 10_000
MAX_CHUNK_ROWS = 100_000
SPLIT_TO_PROTO = {
    Split.TRAINING: common_pb2.SPLIT_TRAINING,
    Split.VALIDATION: common_pb2.SPLIT_VALIDATION,
    Split.LIVE: common_pb2.SPLIT_LIVE,
}
KIND_TO_PROTO = {"binary": common_pb2.TARGET_KIND_BINARY, "graded": common_pb2.TARGET_KIND_GRADED}
NETWORK_TO_PROTO = {v: k for k, v in handlers.NETWORKS.items()}


def chunk_rows(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("chunk_rows must not be negative", metadata={"field": "chunk_rows"})
    return min(requested or DEFAULT_CHUNK_ROWS, MAX_CHUNK_ROWS)


def round_ref(tournament_id: str, number: int) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)


def tournament_pb(row: Any) -> pb.Tournament:
    return pb.Tournament(
        name=f"tournaments/{row.tournament_id}",
        tournament_id=row.tournament_id,
        display_name=row.display_name,
        target_kind=KIND_TO_PROTO[row.target_kind],
        network=NETWORK_TO_PROTO[row.network],
        rules=handlers.rules_of(row),
        create_time=timestamp(row.created_at),
        latest_round_number=row.latest_round or 0,
    )


def round_pb(row: Any) -> pb.Round:
    out = pb.Round(
        name=f"tournaments/{row.tournament_id}/rounds/{row.round_number}",
        round=round_ref(row.tournament_id, row.round_number),
        state=RoundState[row.state.upper()].value,
        open_time=timestamp(row.opened_at),
        scheduled_close_time=timestamp(row.scheduled_close_at),
        close_time=timestamp(row.closed_at),
        resolve_time=timestamp(row.resolved_at),
        score_time=timestamp(row.scored_at),
        pay_time=timestamp(row.paid_at),
        training_rows=row.training_rows,
        validation_rows=row.validation_rows,
        live_rows=row.live_rows,
        feature_count=row.feature_count,
        era_count=row.era_count,
        model_count=row.model_count,
        submission_count=row.submission_count,
        commitment_sha256=row.commitment_sha256,
        dataset_id=row.dataset_id or "",
    )
    if row.generated_spec is not None:
        out.generated.ParseFromString(bytes(row.generated_spec))
        who = optional_principal()
        if who is None or who.role is not Role.OPERATOR:
            out.generated.ClearField("seed")  # the seed regenerates the hidden targets: operators only
    return out


def commitment_pb(row: Any) -> pb.RoundCommitment:
    return pb.RoundCommitment(
        round=round_ref(row.tournament_id, row.round_number),
        commitment_sha256=row.commitment_sha256,
        committed_splits=[SPLIT_TO_PROTO[Split(s)] for s in row.committed_splits],
        salt_hex=bytes(row.salt).hex() if row.revealed else "",
        commit_time=timestamp(row.opened_at),
        reveal_time=timestamp(row.resolved_at) if row.revealed else None,
    )


def model_pb(row: Any, show_address: bool) -> pb.Model:
    return pb.Model(
        name=f"models/{row.model_id}",
        model_id=row.model_id,
        participant_id=row.participant_id,
        tournament_id=row.tournament_id,
        display_name=row.display_name,
        payout_address=row.payout_address if show_address else "",
        create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
    )


def sees_private(row_participant: str) -> bool:
    who = principal()
    return who.role is not Role.PARTICIPANT or who.participant_id == row_participant


class SubmissionsServicer(pb_grpc.SubmissionsServiceServicer):
    def __init__(
        self,
        database: Database,
        keys: uploads.ReceiptKeys,
        on_accept: Callable[[pb.UploadPredictionsResponse], None] | None = None,
    ) -> None:
        self.db = database
        self.keys = keys
        self.cache = RoundCache()
        self.on_accept = on_accept
        self.upload_limit: TokenBuckets | None = None
        self.upload_slots = asyncio.Semaphore(6)
        self.upload_streams = StreamSlots(per_subject=4, total=64)
        self.upload_idle_seconds = 20.0
        self.upload_deadline_seconds = 300.0
        self.max_models_per_participant: int | None = None

    async def _once(self, conn: Any, rpc: str, request: Any, response_type: type, action: Callable) -> Any:
        return await run_once(
            conn,
            schema=SCHEMA,
            subject=principal().subject,
            rpc=rpc,
            request=request,
            response_type=response_type,
            action=action,
        )

    # --- tournaments -----------------------------------------------------------------------

    async def CreateTournament(self, request: pb.CreateTournamentRequest, context: Any):
        async with self.db.transaction() as conn:

            async def action() -> pb.CreateTournamentResponse:
                await handlers.create_tournament(conn, request)
                row = await repo.get_tournament(conn, request.tournament_id)
                return pb.CreateTournamentResponse(tournament=tournament_pb(row))

            return await self._once(conn, "CreateTournament", request, pb.CreateTournamentResponse, action)

    async def GetTournament(self, request: pb.GetTournamentRequest, context: Any):
        async with self.db.connect() as conn:
            return pb.GetTournamentResponse(
                tournament=tournament_pb(await handlers.require_tournament(conn, request.tournament_id))
            )

    async def ListTournaments(self, request: pb.ListTournamentsRequest, context: Any):
        size = page_size(request.page_size)
        after = decode_token(request.page_token, "tournaments")
        async with self.db.connect() as conn:
            rows = await repo.list_tournaments(conn, after, size + 1)
        token = encode_token(rows[size - 1].tournament_id, "tournaments") if len(rows) > size else ""
        return pb.ListTournamentsResponse(tournaments=[tournament_pb(r) for r in rows[:size]], next_page_token=token)

    # --- datasets and rounds ---------------------------------------------------------------

    async def UploadDataset(self, request_iterator: AsyncIterator[pb.UploadDatasetRequest], context: Any):
        header, chunks = await read_stream(request_iterator, "dataset")
        packed = await asyncio.to_thread(dataset_from_chunks, header, chunks)
        async with self.db.transaction() as conn:
            await handlers.require_tournament(conn, header.tournament_id)
            payload = await asyncio.to_thread(handlers.dataset_payload, packed)
            sha = handlers.content_sha256(packed)

            async def action() -> pb.UploadDatasetResponse:
                n_train, n_val, n_live = packed.counts()
                row = await repo.insert_dataset(
                    conn,
                    dataset_id="d_" + secrets.token_hex(6),
                    tournament_id=header.tournament_id,
                    description=header.description[:500],
                    feature_names=packed.feature_names,
                    training_rows=n_train,
                    validation_rows=n_val,
                    live_rows=n_live,
                    content_sha256=sha,
                    payload=payload,
                )
                return pb.UploadDatasetResponse(
                    dataset=pb.Dataset(
                        name=f"tournaments/{row.tournament_id}/datasets/{row.dataset_id}",
                        dataset_id=row.dataset_id,
                        tournament_id=row.tournament_id,
                        description=row.description,
                        feature_names=list(row.feature_names),
                        training_rows=row.training_rows,
                        validation_rows=row.validation_rows,
                        live_rows=row.live_rows,
                        content_sha256=row.content_sha256,
                        create_time=timestamp(row.created_at),
                    )
                )

            return await run_once(
                conn,
                schema=SCHEMA,
                subject=principal().subject,
                rpc="UploadDataset",
                request=header,
                response_type=pb.UploadDatasetResponse,
                action=action,
                content=bytes.fromhex(sha),
            )

    async def OpenRound(self, request: pb.OpenRoundRequest, context: Any):
        async with self.db.transaction() as conn:

            async def action() -> pb.OpenRoundResponse:
                _, row = await handlers.open_round(conn, request)
                return pb.OpenRoundResponse(round=round_pb(row))

            return await self._once(conn, "OpenRound", request, pb.OpenRoundResponse, action)

    async def _move(self, rpc: str, request: Any, response_type: type, target: RoundState, **extra: Any) -> Any:
        async with self.db.transaction() as conn:

            async def action() -> Any:
                row = await handlers.move_round(conn, request.round, target, **extra)
                return response_type(round=round_pb(row))

            return await self._once(conn, rpc, request, response_type, action)

    async def CloseRound(self, request: pb.CloseRoundRequest, context: Any):
        return await self._move("CloseRound", request, pb.CloseRoundResponse, RoundState.CLOSED)

    async def MarkRoundScored(self, request: pb.MarkRoundScoredRequest, context: Any):
        return await self._move(
            "MarkRoundScored",
            request,
            pb.MarkRoundScoredResponse,
            RoundState.SCORED,
            scoring_run_id=request.scoring_run_id or None,
        )

    async def MarkRoundPaid(self, request: pb.MarkRoundPaidRequest, context: Any):
        return await self._move(
            "MarkRoundPaid", request, pb.MarkRoundPaidResponse, RoundState.PAID, batch_ids=list(request.batch_ids)
        )

    async def ResolveRound(self, request: pb.ResolveRoundRequest, context: Any):
        async with self.db.transaction() as conn:

            async def action() -> pb.ResolveRoundResponse:
                row = await handlers.resolve_round(conn, request)
                return pb.ResolveRoundResponse(round=round_pb(row), commitment=commitment_pb(row))

            return await self._once(conn, "ResolveRound", request, pb.ResolveRoundResponse, action)

    async def GetRound(self, request: pb.GetRoundRequest, context: Any):
        async with self.db.connect() as conn:
            return pb.GetRoundResponse(round=round_pb(await handlers.require_round(conn, request.round)))

    async def ListRounds(self, request: pb.ListRoundsRequest, context: Any):
        size = page_size(request.page_size)
        state = None
        if request.state:
            try:
                state = RoundState(request.state).name.lower()
            except ValueError:
                raise InvalidArgument("state: unknown round state", metadata={"field": "state"}) from None
        filters = ["rounds", request.tournament_id, state]
        before = decode_token(request.page_token, filters)
        async with self.db.connect() as conn:
            await handlers.require_tournament(conn, request.tournament_id)
            rows = await repo.list_rounds(conn, request.tournament_id, state, before, size + 1)
        token = encode_token(rows[size - 1].round_number, filters) if len(rows) > size else ""
        return pb.ListRoundsResponse(rounds=[round_pb(r) for r in rows[:size]], next_page_token=token)

    async def GetRoundCommitment(self, request: pb.GetRoundCommitmentRequest, context: Any):
        async with self.db.connect() as conn:
            return pb.GetRoundCommitmentResponse(
                commitment=commitment_pb(await handlers.require_round(conn, request.round))
            )

    # --- data ------------------------------------------------------------------------------

    async def _packed(self, ref: common_pb2.RoundRef) -> tuple[Any, Any, PackedRound]:
        async with self.db.connect() as conn:
            row = await handlers.require_round(conn, ref)
            tournament = await handlers.require_tournament(conn, row.tournament_id)
            data = await repo.get_round_data(conn, row.tournament_id, row.round_number)
        return row, tournament, await asyncio.to_thread(PackedRound.from_row, data)

    async def DownloadRoundData(self, request: pb.DownloadRoundDataRequest, context: Any):
        size = chunk_rows(request.chunk_rows)
        wanted = {Split(s) for s in request.splits if s} if request.splits else set(Split)
        row, tournament, packed = await self._packed(request.round)
        mask = np.isin(packed.splits, [int(s) for s in wanted])
        idx = np.flatnonzero(mask)
        n_train, n_val, n_live = packed.counts()
        yield pb.DownloadRoundDataResponse(
            header=pb.RoundDataHeader(
                round=round_ref(row.tournament_id, row.round_number),
                target_kind=KIND_TO_PROTO[tournament.target_kind],
                feature_names=packed.feature_names,
                row_count=len(idx),
                training_rows=n_train,
                validation_rows=n_val,
                live_rows=n_live,
            )
        )
        released = packed.targets.copy()
        released[packed.splits != Split.TRAINING] = np.nan  # hidden ones come from DownloadTargets after resolve
        eras = era_labels(packed.eras)
        for start in range(0, len(idx), size):
            part = idx[start : start + size]
            yield pb.DownloadRoundDataResponse(
                chunk=pb.DataChunk(
                    row_offset=start,
                    row_count=len(part),
                    ids=pack_strings(packed.ids[part]),
                    eras=pack_strings(eras[part]),
                    splits=[SPLIT_TO_PROTO[Split(s)] for s in packed.splits[part]],
                    features=np.ascontiguousarray(packed.features[part], dtype=F32).tobytes(),
                    targets=released[part].astype(F32).tobytes(),
                )
            )

    async def DownloadTargets(self, request: pb.DownloadTargetsRequest, context: Any):
        size = chunk_rows(request.chunk_rows)
        row, _, packed = await self._packed(request.round)
        if not row.revealed:
            raise FailedPrecondition(
                f"round {row.round_number} is {row.state.upper()}: targets are revealed at resolve",
                metadata={"current_state": row.state.upper()},
            )
        yield pb.DownloadTargetsResponse(commitment=commitment_pb(row))
        idx = np.flatnonzero(packed.tournament_mask)
        for start in range(0, len(idx), size):
            part = idx[start : start + size]
            yield pb.DownloadTargetsResponse(chunk=targets_chunk(packed, part, start))

    # --- models ----------------------------------------------------------------------------

    async def CreateModel(self, request: pb.CreateModelRequest, context: Any):
        caller = principal()
        async with self.db.transaction() as conn:

            async def action() -> pb.CreateModelResponse:
                row = await model_handlers.create_model(
                    conn,
                    caller,
                    request.tournament_id,
                    request.participant_id,
                    request.display_name,
                    request.payout_address,
                    max_models=self.max_models_per_participant,
                )
                return pb.CreateModelResponse(model=model_pb(row, True))

            return await self._once(conn, "CreateModel", request, pb.CreateModelResponse, action)

    async def GetModel(self, request: pb.GetModelRequest, context: Any):
        async with self.db.connect() as conn:
            row = await model_handlers.require_model(conn, request.model_id)
        return pb.GetModelResponse(model=model_pb(row, sees_private(row.participant_id)))

    async def ListModels(self, request: pb.ListModelsRequest, context: Any):
        caller = principal()
        participant = request.participant_id or None
        if caller.role is Role.PARTICIPANT:
            if participant and participant != caller.participant_id:
                raise PermissionDenied("a participant lists only its own models")
            participant = caller.participant_id
        size = page_size(request.page_size)
        filters = ["models", request.tournament_id, participant]
        after = decode_token(request.page_token, filters)
        async with self.db.connect() as conn:
            rows = await models_repo.list_models(conn, request.tournament_id or None, participant, after, size + 1)
        token = encode_token(rows[size - 1].model_id, filters) if len(rows) > size else ""
        return pb.ListModelsResponse(models=[model_pb(r, True) for r in rows[:size]], next_page_token=token)

    async def UpdateModelPayoutAddress(self, request: pb.UpdateModelPayoutAddressRequest, context: Any):
        caller = principal()
        async with self.db.transaction() as conn:

            async def action() -> pb.UpdateModelPayoutAddressResponse:
                row = await model_handlers.update_address(conn, caller, request.model_id, request.payout_address)
                return pb.UpdateModelPayoutAddressResponse(model=model_pb(row, True))

            return await self._once(
                conn, "UpdateModelPayoutAddress", request, pb.UpdateModelPayoutAddressResponse, action
            )

    # --- uploads ---------------------------------------------------------------------------

    async def UploadPredictions(self, request_iterator: AsyncIterator[pb.UploadPredictionsRequest], context: Any):
        caller = principal()
        wait = self.upload_limit.take(caller.key_id) if self.upload_limit else 0.0
        if wait:
            raise ResourceExhausted(
                f"too many uploads with this API key; retry in {wait:.1f} s",
                reason="UPLOAD_RATE_LIMITED",
                metadata={"retry_after_seconds": f"{wait:.1f}"},
            )
        subject = caller.participant_id or caller.key_id  # a participant's keys share its streams
        if not self.upload_streams.acquire(subject):
            raise self._streams_refused(subject)
        try:
            return await self._upload(
                MessageReader(request_iterator, self.upload_idle_seconds, self.upload_deadline_seconds, "predictions"),
                caller,
            )
        finally:
            self.upload_streams.release(subject)

    def _streams_refused(self, subject: str) -> ResourceExhausted:
        slots = self.upload_streams
        if slots.open_for(subject) >= slots.per_subject:
            return ResourceExhausted(
                f"you already have {slots.per_subject} uploads in progress, the most one participant may have open "
                "at once (all its API keys together); finish or cancel one before starting another",
                reason="UPLOAD_STREAMS_PER_PARTICIPANT",
                metadata={"limit": str(slots.per_subject)},
            )
        return ResourceExhausted(
            f"the service is taking its maximum of {slots.total} uploads at once; retry in a few seconds",
            reason="UPLOAD_STREAMS",
            metadata={"limit": str(slots.total), "retry_after_seconds": "2"},
        )

    async def _upload(self, reader: MessageReader, caller: Any) -> pb.UploadPredictionsResponse:
        first = await reader.next()
        if first is None:
            raise InvalidArgument("the predictions stream was empty: send a header, then chunks")
        if first.WhichOneof("kind") != "header":
            raise InvalidArgument("the predictions stream must start with a header")
        header = first.header
        async with self.db.connect() as conn:  # released before the rows arrive, however slowly
            bounds = await uploads.open_upload(conn, self.cache, caller, header)
        assembler = UploadAssembler(bounds)
        while (message := await reader.next()) is not None:
            kind = message.WhichOneof("kind")
            if kind == "header":
                raise InvalidArgument("the predictions stream must start with exactly one header")
            if kind != "chunk":
                raise InvalidArgument("empty message in the predictions stream: set header or chunk")
            assembler.add(message.chunk.ids, message.chunk.values)
        ids, values, content = await asyncio.to_thread(assembler.finish)
        upload = uploads.Upload(header, ids, values)
        accepted_now: list[bool] = []  # False for a repeated request id: its first answer is returned
        async with self.upload_slots, self.db.transaction() as conn:

            async def action() -> pb.UploadPredictionsResponse:
                accepted_now.append(True)
                return await uploads.accept(conn, self.cache, self.keys.signer, caller, upload)

            response = await run_once(
                conn,
                schema=SCHEMA,
                subject=caller.subject,
                rpc="UploadPredictions",
                request=header,
                response_type=pb.UploadPredictionsResponse,
                action=action,
                content=content,
            )
        if self.on_accept is not None and accepted_now:
            self.on_accept(response)
        return response

    async def GetSubmission(self, request: pb.GetSubmissionRequest, context: Any):
        if request.version < 0:
            raise InvalidArgument("version must be >= 0 (0 = latest)", metadata={"field": "version"})
        async with self.db.connect() as conn:
            round_row = await handlers.require_round(conn, request.round)
            model = await model_handlers.require_model(conn, request.model_id)
            if not sees_private(model.participant_id) and round_row.state in ("open", "closed"):
                raise PermissionDenied("another participant's submission is private until the round resolves")
            row = await uploads_repo.get_submission(
                conn, round_row.tournament_id, round_row.round_number, model.model_id, request.version
            )
            latest = await uploads_repo.latest_version(
                conn, round_row.tournament_id, round_row.round_number, model.model_id
            )
        if row is None:
            which = f"version {request.version}" if request.version else "submission"
            raise NotFound(
                f"model {request.model_id!r} has no {which} in round {round_row.round_number}",
                metadata={"model_id": request.model_id},
            )
        return pb.GetSubmissionResponse(submission=uploads.submission_pb(row, latest=row.version == latest))

    async def ListSubmissions(self, request: pb.ListSubmissionsRequest, context: Any):
        caller = principal()
        participant = request.participant_id or None
        size = page_size(request.page_size)
        async with self.db.connect() as conn:
            round_row = await handlers.require_round(conn, request.round)
            if caller.role is Role.PARTICIPANT and round_row.state in ("open", "closed"):
                if participant and participant != caller.participant_id:
                    raise PermissionDenied("other participants' submissions are private until the round resolves")
                participant = caller.participant_id
            filters = [
                "subs",
                round_row.tournament_id,
                round_row.round_number,
                request.model_id,
                participant,
                request.latest_only,
            ]
            after = decode_token(request.page_token, filters)
            rows = await uploads_repo.list_submissions(
                conn,
                round_row.tournament_id,
                round_row.round_number,
                request.model_id or None,
                participant,
                request.latest_only,
                after,
                size + 1,
            )
        token = encode_token(rows[size - 1].seq, filters) if len(rows) > size else ""
        return pb.ListSubmissionsResponse(
            submissions=[uploads.submission_pb(r, r.latest) for r in rows[:size]], next_page_token=token
        )

    async def GetReceiptPublicKey(self, request: pb.GetReceiptPublicKeyRequest, context: Any):
        signer = self.keys.signer
        if request.key_id and request.key_id != signer.key_id:
            async with self.db.connect() as conn:
                row = await uploads_repo.get_receipt_key(conn, request.key_id)
            if row is None:
                raise NotFound(f"receipt key {request.key_id!r} not found", metadata={"field": "key_id"})
            public = receipts.load_public_key_raw(bytes(row.public_key))
        else:
            public = signer.key.public_key()
        return pb.GetReceiptPublicKeyResponse(
            key_id=receipts.key_id(public),
            public_key=receipts.public_key_raw(public),
            public_key_pem=receipts.public_key_to_pem(public).decode(),
        )

    # --- feeding scoring -------------------------------------------------------------------

    async def StreamRoundSubmissions(self, request: pb.StreamRoundSubmissionsRequest, context: Any):
        size = chunk_rows(request.chunk_rows)
        if request.model_id or request.version:
            async for message in self._stream_one_upload(request, size):
                yield message
            return
        row, _, packed = await self._packed(request.round)
        if row.state == "open":
            raise FailedPrecondition(
                "round is OPEN: its submissions stream once it is closed", metadata={"current_state": "OPEN"}
            )
        idx = np.flatnonzero(packed.tournament_mask)
        eras = era_labels(packed.eras)
        for start in range(0, len(idx), size):
            part = idx[start : start + size]
            yield pb.StreamRoundSubmissionsResponse(
                rows=pb.RoundRows(
                    row_offset=start,
                    total_rows=len(idx),
                    ids=pack_strings(packed.ids[part]),
                    eras=pack_strings(eras[part]),
                    splits=[SPLIT_TO_PROTO[Split(s)] for s in packed.splits[part]],
                )
            )
        async with self.db.connect() as conn:
            subs = await uploads_repo.latest_predictions(conn, row.tournament_id, row.round_number)
        for sub in subs:
            values = bytes(sub.predictions)
            record = uploads.submission_pb(sub, latest=True)
            for start in range(0, len(idx), size):
                yield pb.StreamRoundSubmissionsResponse(
                    submission_chunk=pb.SubmissionChunk(
                        model_id=sub.model_id,
                        version=sub.version,
                        participant_id=sub.participant_id,
                        submission_id=sub.submission_id,
                        row_offset=start,
                        values=values[start * 4 : (start + size) * 4],
                        submission=record if start == 0 else None,
                    )
                )

    async def _stream_one_upload(self, request: pb.StreamRoundSubmissionsRequest, size: int):
        if not request.model_id or request.version < 1:
            raise InvalidArgument("model_id and version >= 1 go together", metadata={"field": "version"})
        async with self.db.connect() as conn:
            row = await handlers.require_round(conn, request.round)
            sub = await uploads_repo.get_predictions(
                conn, row.tournament_id, row.round_number, request.model_id, request.version
            )
        if sub is None:
            raise NotFound(
                f"no accepted upload of model {request.model_id!r} v{request.version} in round {row.round_number}",
                metadata={"model_id": request.model_id},
            )
        values = bytes(sub.predictions)
        record = uploads.submission_pb(sub, latest=sub.latest)
        for start in range(0, max(len(values) // 4, 1), size):
            yield pb.StreamRoundSubmissionsResponse(
                submission_chunk=pb.SubmissionChunk(
                    model_id=sub.model_id,
                    version=sub.version,
                    participant_id=sub.participant_id,
                    submission_id=sub.submission_id,
                    row_offset=start,
                    values=values[start * 4 : (start + size) * 4],
                    submission=record if start == 0 else None,
                )
            )

    async def StreamRoundTargets(self, request: pb.StreamRoundTargetsRequest, context: Any):
        size = chunk_rows(request.chunk_rows)
        row, _, packed = await self._packed(request.round)
        if not row.revealed and principal().identity != SCORING:
            # the access rule already says so; kept here too, so widening the rule can't leak hidden targets
            raise PermissionDenied("the hidden targets of a round that has not resolved go to the scoring service only")
        targets = packed.targets.copy()
        if not row.revealed:
            targets[packed.splits == Split.LIVE] = np.nan
        packed = PackedRound(packed.feature_names, packed.ids, packed.eras, packed.splits, packed.features, targets)
        idx = np.flatnonzero(packed.tournament_mask)
        for start in range(0, len(idx), size):
            yield pb.StreamRoundTargetsResponse(chunk=targets_chunk(packed, idx[start : start + size], start))


def targets_chunk(packed: PackedRound, part: np.ndarray, offset: int) -> pb.TargetsChunk:
    return pb.TargetsChunk(
        row_offset=offset,
        ids=pack_strings(packed.ids[part]),
        targets=packed.targets[part].astype(F32).tobytes(),
        splits=[SPLIT_TO_PROTO[Split(s)] for s in packed.splits[part]],
    )


class MessageReader:
    """A client stream read one message at a time, with an idle timeout and an overall deadline.

    An idle or endless stream is cut with DEADLINE_EXCEEDED, which frees its slot: a client that
    opens streams and sends nothing holds nothing for long.
    """

    def __init__(self, iterator: AsyncIterator[Any], idle_seconds: float, deadline_seconds: float, what: str) -> None:
        self._iterator = aiter(iterator)
        self.idle = idle_seconds
        self.total = deadline_seconds
        self.what = what
        self._deadline = asyncio.get_running_loop().time() + deadline_seconds

    async def next(self) -> Any | None:
        """The next message, or None at the end of the stream."""
        remaining = self._deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise self._late()
        try:
            return await asyncio.wait_for(anext(self._iterator), timeout=min(self.idle, remaining))
        except StopAsyncIteration:
            return None
        except TimeoutError:
            if self._deadline - asyncio.get_running_loop().time() <= 0:
                raise self._late() from None
            raise DeadlineExceeded(
                f"the {self.what} stream sent nothing for {self.idle:g} s; send each message "
                "promptly (or a smaller upload)",
                reason="STREAM_IDLE",
                metadata={"idle_seconds": f"{self.idle:g}"},
            ) from None

    def _late(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"the {self.what} stream did not finish within {self.total:g} s",
            reason="STREAM_DEADLINE",
            metadata={"deadline_seconds": f"{self.total:g}"},
        )


async def read_stream(request_iterator: AsyncIterator[Any], what: str, max_chunks: int = 10_000) -> tuple[Any, list]:
    """The header and chunks of a client stream (header exactly once, first)."""
    header = None
    chunks: list[Any] = []
    async for message in request_iterator:
        kind = message.WhichOneof("kind")
        if kind == "header":
            if header is not None or chunks:
                raise InvalidArgument(f"the {what} stream must start with exactly one header")
            header = message.header
        elif kind == "chunk":
            if header is None:
                raise InvalidArgument(f"the {what} stream must start with a header")
            chunks.append(message.chunk)
            if len(chunks) > max_chunks:
                raise InvalidArgument(f"too many chunks (more than {max_chunks}); send larger chunks")
        else:
            raise InvalidArgument(f"empty message in the {what} stream: set header or chunk")
    if header is None:
        raise InvalidArgument(f"the {what} stream was empty: send a header, then chunks")
    return header, chunks


def dataset_from_chunks(header: pb.DatasetHeader, chunks: list[pb.DataChunk]) -> PackedRound:
    """An operator's dataset from its column chunks, checked: unique ids, finite features, sizes."""
    names = list(header.feature_names)
    if not names or len(set(names)) != len(names) or len(names) > 512:
        raise InvalidArgument("feature_names: 1-512 unique names are required", metadata={"field": "feature_names"})
    ids, eras, splits, features, targets = [], [], [], [], []
    from services.submissions.store.round_data import unpack_strings

    for number, chunk in enumerate(chunks, start=1):
        n = chunk.row_count
        chunk_ids = unpack_strings(chunk.ids)
        chunk_eras = unpack_strings(chunk.eras)
        if (
            not (len(chunk_ids) == len(chunk_eras) == len(chunk.splits) == n)
            or len(chunk.features) != n * len(names) * 4
            or len(chunk.targets) != n * 4
        ):
            raise InvalidArgument(
                f"chunk {number}: columns must all have row_count={n} rows", metadata={"chunk": str(number)}
            )
        ids.append(chunk_ids)
        era_numbers = np.char.replace(chunk_eras, "era", "")
        if not all(e.isdigit() for e in era_numbers.tolist()):
            raise InvalidArgument(f"chunk {number}: eras must be labelled eraN", metadata={"chunk": str(number)})
        eras.append(era_numbers.astype(np.int32))
        splits.append(np.asarray([s for s in chunk.splits], dtype=np.int8))
        features.append(np.frombuffer(chunk.features, dtype=F32).reshape(n, len(names)))
        targets.append(np.frombuffer(chunk.targets, dtype=F32))
    if not ids:
        raise InvalidArgument("the dataset has no rows")
    packed = PackedRound(
        names,
        np.concatenate(ids),
        np.concatenate(eras),
        np.concatenate(splits),
        np.concatenate(features),
        np.concatenate(targets),
    )
    if len(np.unique(packed.ids)) != len(packed.ids):
        raise InvalidArgument("row ids must be unique")
    if not set(np.unique(packed.splits).tolist()) <= {1, 2, 3} or not (packed.splits == Split.VALIDATION).any():
        raise InvalidArgument("splits must be TRAINING, VALIDATION or LIVE, with at least one validation row")
    if not np.isfinite(packed.features).all():
        raise InvalidArgument("features must be finite")
    order = np.argsort(packed.splits, kind="stable")
    return PackedRound(
        names,
        packed.ids[order],
        packed.eras[order],
        packed.splits[order],
        packed.features[order],
        packed.targets[order],
    )
