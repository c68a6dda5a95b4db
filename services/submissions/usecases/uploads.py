"""The upload path: parse, check, compare with earlier submissions, store a version, sign a receipt.

Everything for one upload happens in one database transaction, so a refused upload stores nothing.
The model row is locked for the transaction, which serialises versions of one model; the numeric
work runs in a worker thread so other uploads keep flowing.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crowdquant.formats import receipts
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from services.submissions.api import rules as tournament_rules
from services.submissions.domain import content
from services.submissions.domain.checks import ValueRule, check_upload
from services.submissions.domain.concordance import assign_clusters, check_concordance, fit_clusters
from services.submissions.domain.dataset import Split
from services.submissions.domain.originality import check_originality
from services.submissions.domain.state import RoundState, require_state
from services.submissions.domain.upload_stream import MAX_ROWS_FACTOR, UploadBounds
from services.submissions.store import rounds as rounds_repo
from services.submissions.store import uploads as repo
from services.submissions.store.round_data import F32, PackedRound, RoundCache, RoundView
from services.submissions.usecases.models import require_model
from services.submissions.usecases.rounds import STATE_BY_NAME, require_round, require_tournament, rules_of
from shared.auth import Principal
from shared.errors import InvalidArgument, ResourceExhausted, Unavailable


@dataclass
class Upload:
    """An upload as received: the header and its ids and values in the order sent."""

    header: pb.UploadHeader
    ids: np.ndarray
    values: np.ndarray


class ReceiptKeys:
    """The current receipt signing key: from CROWDQUANT_RECEIPT_SIGNING_KEY, else kept in the schema.

    The stored key lets every replica sign with one key and survives restarts; a key given by the
    environment is recorded (public part only) so old receipts stay verifiable after rotation.
    """

    def __init__(self, configured_pem: bytes | None) -> None:
        self._configured = configured_pem
        self._signer: ReceiptSigner | None = None

    @property
    def signer(self) -> ReceiptSigner:
        if self._signer is None:
            raise Unavailable("receipt signing key not loaded yet (database unavailable)")
        return self._signer

    async def load(self, conn: Any) -> None:
        if self._configured:
            key = receipts.load_private_key_pem(self._configured)
            await repo.insert_receipt_key(conn, receipts.key_id(key), receipts.public_key_raw(key.public_key()), None)
        else:
            row = await repo.get_receipt_key(conn, None)
            if row is None or row.private_pem is None:
                fresh = receipts.generate_signing_key()
                await repo.insert_receipt_key(
                    conn,
                    receipts.key_id(fresh),
                    receipts.public_key_raw(fresh.public_key()),
                    receipts.private_key_to_pem(fresh),
                )
                row = await repo.get_receipt_key(conn, None)
            key = receipts.load_private_key_pem(bytes(row.private_pem))
        self._signer = ReceiptSigner(key)


class ReceiptSigner:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        self.key_id = receipts.key_id(key)

    def sign(self, **fields: Any) -> receipts.Receipt:
        return receipts.sign_receipt(self.key, **fields)


def check_result(outcome: int, reason: str, value: float, threshold: float) -> pb.CheckResult:
    return pb.CheckResult(
        outcome=outcome, reason=reason, value=float(value) if np.isfinite(value) else 0.0, threshold=threshold
    )


SKIPPED = pb.CheckResult(outcome=pb.CheckResult.OUTCOME_SKIPPED, reason="check is off")


def apply_mode(mode: int, passed: bool, result: pb.CheckResult, what: str) -> pb.CheckResult:
    if passed:
        result.outcome = pb.CheckResult.OUTCOME_PASSED
        return result
    if mode == pb.CHECK_MODE_REJECT:
        raise InvalidArgument(f"{what}: {result.reason}", reason=f"{what.upper()}_FAILED")
    result.outcome = pb.CheckResult.OUTCOME_FLAGGED
    return result


def run_checks(
    view: RoundView, upload: Upload, rules: pb.TournamentRules, model_id: str
) -> tuple[np.ndarray, pb.Submission]:
    """The numeric part (thread): align and validate, then originality and concordance.

    Every check here is target-free: an upload's answer must not depend on the hidden targets, or
    single-row probes read them back (consistency, which needs them, is judged at resolve).
    """
    rule = ValueRule(0.0 if rules.upload.open_interval else None, min_std=rules.upload.min_std)
    aligned = check_upload(view.rows, upload.ids, upload.values, rule)
    checks = pb.Submission()
    o = rules.originality
    if o.mode == pb.CHECK_MODE_OFF:
        checks.originality.CopyFrom(SKIPPED)
    else:
        # Only earlier versions of this model are left out: a participant's other models count, so a
        # second model copying the first is flagged (and the first keeps its eligibility).
        same_model = np.asarray([m == model_id for m in view.models], dtype=bool)
        result = check_originality(
            aligned,
            view.earlier,
            tournament_rules.originality_rule(rules),
            exclude=same_model if same_model.any() else None,
        )
        value, _ = result.statistic
        threshold = {
            "spearman": o.max_abs_rank_correlation,
            "ks": o.duplicate_ks_statistic
            if result.ks is not None and result.ks < o.duplicate_ks_statistic
            else o.similar_ks_statistic,
        }.get(result.decided_by, o.max_abs_pearson)
        checks.originality.CopyFrom(
            apply_mode(o.mode, result.original, check_result(0, result.reason, value, threshold), "originality")
        )
    c = rules.concordance
    both = (view.splits == Split.LIVE).any() and (view.splits == Split.VALIDATION).any()
    if c.mode == pb.CHECK_MODE_OFF or not both:
        checks.concordance.CopyFrom(SKIPPED)
    else:
        clusters = view.clusters.get(c.cluster_count)
        if clusters is None:
            centroids = fit_clusters(view.features, min(c.cluster_count, len(view.features)))
            clusters = view.clusters[c.cluster_count] = assign_clusters(view.features, centroids)
        result_c = check_concordance(aligned, clusters, view.splits, threshold=c.max_ks_statistic)
        checks.concordance.CopyFrom(
            apply_mode(
                c.mode,
                result_c.concordant,
                check_result(0, result_c.reason, result_c.mean_ks, c.max_ks_statistic),
                "concordance",
            )
        )
    return aligned, checks


def add_rows(view: RoundView, rows: list[Any]) -> None:
    for row in rows:
        values = np.frombuffer(bytes(row.predictions), dtype=F32)
        view.add(row.seq, f"{row.model_id} v{row.version}", row.model_id, values)


async def round_view(conn: Any, cache: RoundCache, tournament_id: str, round_number: int) -> RoundView:
    key = (tournament_id, round_number)
    view = cache.get(key)
    if view is None:
        data = await rounds_repo.get_round_data(conn, tournament_id, round_number)
        view = cache.put(key, await asyncio.to_thread(RoundView.build, PackedRound.from_row(data)))
    async with view.lock:
        newer = await repo.predictions_since(conn, tournament_id, round_number, view.last_seq)
        if newer:
            await asyncio.to_thread(add_rows, view, newer)
    return view


MAX_REQUEST_ID = 128


async def open_upload(conn: Any, cache: RoundCache, caller: Principal, header: pb.UploadHeader) -> UploadBounds:
    """Check an upload's header before any of its rows are taken; returns the bounds its chunks must keep.

    Refuses at once what ``accept`` would refuse anyway (no request id, a round not open, a model
    not the caller's), so a doomed stream is cut after its first message.
    """
    if not header.request_id:
        raise InvalidArgument(
            "request_id is required: a fresh id per upload makes a retried upload safe",
            metadata={"field": "request_id"},
        )
    if len(header.request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(
            f"request_id must be at most {MAX_REQUEST_ID} characters", metadata={"field": "request_id"}
        )
    round_row = await require_round(conn, header.round, counts=False)
    require_state(STATE_BY_NAME[round_row.state], RoundState.OPEN, action="uploading predictions")
    model = await require_model(conn, header.model_id, caller, owner_only=True)
    if model.tournament_id != round_row.tournament_id:
        raise InvalidArgument(
            f"model {model.model_id!r} belongs to tournament {model.tournament_id!r}, not {round_row.tournament_id!r}",
            metadata={"field": "model_id"},
        )
    view = await round_view(conn, cache, round_row.tournament_id, round_row.round_number)
    return UploadBounds.for_round(round_row.validation_rows + round_row.live_rows, view.max_id_bytes)


async def accept(
    conn: Any, cache: RoundCache, signer: ReceiptSigner, caller: Principal, upload: Upload
) -> pb.UploadPredictionsResponse:
    """Check and store one upload; returns the response."""
    header = upload.header
    round_row = await require_round(conn, header.round, counts=False)
    require_state(STATE_BY_NAME[round_row.state], RoundState.OPEN, action="uploading predictions")
    model = await require_model(conn, header.model_id, caller, for_update=True, owner_only=True)
    if model.tournament_id != round_row.tournament_id:
        raise InvalidArgument(
            f"model {model.model_id!r} belongs to tournament {model.tournament_id!r}, not {round_row.tournament_id!r}",
            metadata={"field": "model_id"},
        )
    tournament = await require_tournament(conn, round_row.tournament_id)
    rules = rules_of(tournament)
    n_rows = round_row.validation_rows + round_row.live_rows
    if len(upload.ids) > MAX_ROWS_FACTOR * n_rows:
        raise InvalidArgument(f"the upload has {len(upload.ids)} rows; the round has {n_rows}")
    accepted = await repo.count_versions(conn, round_row.tournament_id, round_row.round_number, model.model_id)
    limit = rules.upload.max_uploads_per_model_per_round
    if accepted >= limit:
        raise ResourceExhausted(
            f"model {model.display_name!r} has used all {limit} accepted uploads of round {round_row.round_number}; "
            f"the limit resets when round {round_row.round_number + 1} opens",
            reason="UPLOAD_LIMIT",
            metadata={"limit": str(limit), "round_number": str(round_row.round_number)},
        )
    view = await round_view(conn, cache, round_row.tournament_id, round_row.round_number)
    aligned, checks = await asyncio.to_thread(run_checks, view, upload, rules, model.model_id)
    version = accepted + 1
    sha = content.content_sha256(aligned)
    now = datetime.now(UTC).replace(microsecond=0)
    receipt = signer.sign(
        tournament_id=round_row.tournament_id,
        round_number=round_row.round_number,
        model_id=model.model_id,
        version=version,
        content_sha256=sha,
        row_count=len(aligned),
        accept_time=now,
    )
    receipt_pb = receipt_to_proto(receipt, now)
    row = await repo.insert_submission(
        conn,
        submission_id="s_" + secrets.token_hex(8),
        tournament_id=round_row.tournament_id,
        round_number=round_row.round_number,
        model_id=model.model_id,
        participant_id=model.participant_id,
        version=version,
        row_count=len(aligned),
        content_sha256=sha,
        predictions=content.canonical_bytes(aligned),
        checks=checks.SerializeToString(),
        receipt=receipt_pb.SerializeToString(),
        accepted_at=now,
    )
    response = pb.UploadPredictionsResponse(submission=submission_pb(row, latest=True), receipt=receipt_pb)
    return response


def receipt_to_proto(receipt: receipts.Receipt, accepted: datetime) -> pb.Receipt:
    from crowdquant.common.v1 import common_pb2
    from shared.rpc.convert import timestamp

    f = receipt.fields
    return pb.Receipt(
        round=common_pb2.RoundRef(tournament_id=f.tournament_id, round_number=f.round_number),
        model_id=f.model_id,
        version=f.version,
        content_sha256=f.content_sha256,
        row_count=f.row_count,
        accept_time=timestamp(accepted),
        key_id=f.key_id,
        signature=receipt.signature,
        signed_payload=receipt.payload,
    )


def submission_pb(row: Any, latest: bool) -> pb.Submission:
    from crowdquant.common.v1 import common_pb2
    from shared.rpc.convert import timestamp

    checks = pb.Submission.FromString(bytes(row.checks))
    return pb.Submission(
        name=f"tournaments/{row.tournament_id}/rounds/{row.round_number}/submissions/{row.submission_id}",
        submission_id=row.submission_id,
        round=common_pb2.RoundRef(tournament_id=row.tournament_id, round_number=row.round_number),
        model_id=row.model_id,
        participant_id=row.participant_id,
        version=row.version,
        latest=latest,
        content_sha256=row.content_sha256,
        row_count=row.row_count,
        accept_time=timestamp(row.accepted_at),
        originality=checks.originality,
        concordance=checks.concordance,
    )
