"""A round over real gRPC + PostgreSQL: open, download, models, uploads, receipts, close, resolve."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.formats import receipts
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import SMALL, blt_address, download, upload_requests

T = "flow"


async def expect(code, call, contains=""):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert contains.lower() in (info.value.details() or "").lower(), info.value.details()
    return info.value


@pytest.fixture(scope="module")
async def tournament(subs, keys):
    resp = await subs.CreateTournament(
        pb.CreateTournamentRequest(
            request_id="t-flow",
            tournament_id=T,
            display_name="Flow",
            target_kind=common_pb2.TARGET_KIND_BINARY,
            network=common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST,
            rules=pb.TournamentRules(upload=pb.UploadRules(max_uploads_per_model_per_round=3)),
        ),
        metadata=md(keys.operator),
    )
    return resp.tournament


@pytest.fixture(scope="module")
async def opened(subs, keys, tournament):
    resp = await subs.OpenRound(
        pb.OpenRoundRequest(request_id="open-1", tournament_id=T, generated=SMALL), metadata=md(keys.operator)
    )
    return resp.round


@pytest.fixture(scope="module")
async def model(subs, keys, tournament):
    resp = await subs.CreateModel(
        pb.CreateModelRequest(request_id="m-1", tournament_id=T, display_name="alpha", payout_address=blt_address(1)),
        metadata=md(keys.participant),
    )
    return resp.model


async def test_tournament_defaults_and_errors(subs, keys, tournament):
    assert tournament.rules.upload.max_uploads_per_model_per_round == 3
    assert tournament.rules.originality.max_abs_pearson == pytest.approx(0.95)
    assert tournament.rules.originality.max_abs_rank_correlation == pytest.approx(0.95)
    assert not tournament.rules.originality.ks_pass  # the 2017 KS pass is opt-in (see the README)
    assert tournament.rules.payout.require_originality  # copies gain nothing unless a tournament opts out
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        subs.CreateTournament(
            pb.CreateTournamentRequest(request_id="x", tournament_id="y", target_kind=1), metadata=md(keys.participant)
        ),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        subs.CreateTournament(
            pb.CreateTournamentRequest(request_id="t-bad", tournament_id="Bad Id", target_kind=1),
            metadata=md(keys.operator),
        ),
        "tournament_id",
    )
    await expect(
        grpc.StatusCode.ALREADY_EXISTS,
        subs.CreateTournament(
            pb.CreateTournamentRequest(request_id="t-dup", tournament_id=T, target_kind=1), metadata=md(keys.operator)
        ),
        T,
    )
    # consistency needs the hidden targets: it is judged at resolve on live eras, never used to refuse uploads
    assert tournament.rules.consistency.mode == pb.CHECK_MODE_MARK
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        subs.CreateTournament(
            pb.CreateTournamentRequest(
                request_id="t-reject",
                tournament_id="reject",
                target_kind=1,
                rules=pb.TournamentRules(consistency=pb.ConsistencyRules(mode=pb.CHECK_MODE_REJECT)),
            ),
            metadata=md(keys.operator),
        ),
        "consistency.mode",
    )


async def test_open_round_publishes_commitment_and_data(subs, keys, opened):
    assert opened.state == pb.Round.STATE_OPEN and opened.round.round_number == 1
    assert opened.validation_rows == 1200 and opened.live_rows == 600 and opened.training_rows == 2000
    assert len(opened.commitment_sha256) == 64
    # the generator's seed would regenerate the hidden targets: only operators see it
    assert opened.generated.seed == SMALL.seed
    seen = (await subs.GetRound(pb.GetRoundRequest(round=opened.round), metadata=md(keys.participant))).round
    assert seen.generated.seed == 0 and seen.generated.n_train == SMALL.n_train
    commitment = (
        await subs.GetRoundCommitment(pb.GetRoundCommitmentRequest(round=opened.round), metadata=md(keys.participant))
    ).commitment
    assert commitment.commitment_sha256 == opened.commitment_sha256 and commitment.salt_hex == ""
    header, ids, _eras, splits, feats, targets = await download(subs, opened.round, keys.participant)
    assert header.row_count == 3800 and len(ids) == 3800 and feats.shape == (3800, 8)
    assert np.isfinite(targets[splits == common_pb2.SPLIT_TRAINING]).all()
    assert np.isnan(targets[splits != common_pb2.SPLIT_TRAINING]).all()
    assert ((feats >= 0) & (feats <= 1)).all()
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        anext(
            aiter(subs.DownloadTargets(pb.DownloadTargetsRequest(round=opened.round), metadata=md(keys.participant)))
        ),
        "resolve",
    )


async def test_models_validate_payout_address(subs, keys, tournament, model):
    assert model.display_name == "alpha" and model.participant_id == keys.participant_id
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-bad",
                tournament_id=T,
                display_name="beta",
                payout_address="tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
            ),
            metadata=md(keys.participant),
        ),
        "payout_address",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-bad2", tournament_id=T, display_name="beta", payout_address="not-an-address"
            ),
            metadata=md(keys.participant),
        ),
        "payout_address",
    )
    await expect(
        grpc.StatusCode.ALREADY_EXISTS,
        subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-dup", tournament_id=T, display_name="alpha", payout_address=blt_address(2)
            ),
            metadata=md(keys.other),
        ),
        "alpha",
    )
    other_view = await subs.GetModel(pb.GetModelRequest(model_id=model.model_id), metadata=md(keys.other))
    assert other_view.model.payout_address == ""
    listed = await subs.ListModels(pb.ListModelsRequest(), metadata=md(keys.other))
    assert model.model_id not in {m.model_id for m in listed.models}


async def test_upload_versions_receipts_and_limits(subs, keys, opened, model):
    _, ids, _, splits, _feats, _ = await download(subs, opened.round, keys.participant)
    tour = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    rng = np.random.default_rng(0)
    values = rng.uniform(0.3, 0.7, len(tour))
    header = pb.UploadHeader(request_id="u-1", round=opened.round, model_id=model.model_id)
    first = await subs.UploadPredictions(upload_requests(header, tour, values), metadata=md(keys.participant))
    assert first.submission.version == 1 and first.submission.row_count == len(tour)
    assert first.submission.originality.outcome == pb.CheckResult.OUTCOME_PASSED

    key = await subs.GetReceiptPublicKey(pb.GetReceiptPublicKeyRequest())  # anonymous
    public = receipts.load_public_key_raw(key.public_key)
    r = first.receipt
    fields = receipts.ReceiptFields.from_payload(r.signed_payload)
    receipts.verify_receipt(public, receipts.Receipt(fields, r.signature), r.signed_payload)
    assert fields.content_sha256 == first.submission.content_sha256 and fields.version == 1
    tampered = receipts.ReceiptFields(**{**fields.__dict__, "version": 2})
    with pytest.raises(receipts.ReceiptInvalid if hasattr(receipts, "ReceiptInvalid") else Exception):
        receipts.verify_receipt(public, receipts.Receipt(tampered, r.signature))

    again = await subs.UploadPredictions(upload_requests(header, tour, values), metadata=md(keys.participant))
    assert again.submission.submission_id == first.submission.submission_id
    await expect(
        grpc.StatusCode.ALREADY_EXISTS,
        subs.UploadPredictions(upload_requests(header, tour, values[::-1]), metadata=md(keys.participant)),
        "request_id",
    )

    order = rng.permutation(len(tour))
    second = await subs.UploadPredictions(
        upload_requests(
            pb.UploadHeader(request_id="u-2", round=opened.round, model_id=model.model_id),
            [tour[i] for i in order],
            values[order] * 0.9 + 0.05,
        ),
        metadata=md(keys.participant),
    )
    assert second.submission.version == 2 and second.submission.latest
    await subs.UploadPredictions(
        upload_requests(
            pb.UploadHeader(request_id="u-3", round=opened.round, model_id=model.model_id), tour, values * 0.8 + 0.1
        ),
        metadata=md(keys.participant),
    )
    err = await expect(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        subs.UploadPredictions(
            upload_requests(
                pb.UploadHeader(request_id="u-4", round=opened.round, model_id=model.model_id),
                tour,
                values * 0.7 + 0.15,
            ),
            metadata=md(keys.participant),
        ),
        "all 3 accepted uploads",
    )
    assert "resets" in err.details()

    # another participant can't upload for this model, nor read the submission while open
    await expect(
        grpc.StatusCode.NOT_FOUND,
        subs.UploadPredictions(
            upload_requests(
                pb.UploadHeader(request_id="u-x", round=opened.round, model_id=model.model_id), tour, values
            ),
            metadata=md(keys.other),
        ),
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        subs.GetSubmission(
            pb.GetSubmissionRequest(round=opened.round, model_id=model.model_id), metadata=md(keys.other)
        ),
    )
    listed = await subs.ListSubmissions(
        pb.ListSubmissionsRequest(round=opened.round, page_size=2), metadata=md(keys.participant)
    )
    assert [s.version for s in listed.submissions] == [1, 2] and listed.next_page_token


async def test_bad_uploads_name_rows_and_store_nothing(subs, keys, opened):
    model = (
        await subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-gamma", tournament_id=T, display_name="gamma", payout_address=blt_address(3)
            ),
            metadata=md(keys.participant),
        )
    ).model
    _, ids, _, splits, _, _ = await download(subs, opened.round, keys.participant)
    tour = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    values = np.full(len(tour), 0.5)
    values[3] = 0.6
    before = await subs.ListSubmissions(pb.ListSubmissionsRequest(round=opened.round), metadata=md(keys.operator))
    cases = [
        (tour[:-5], values[:-5], "missing"),
        ([*tour, tour[0]], np.append(values, 0.5), "duplicate"),
        ([*tour[:-1], "nope"], values, "unknown"),
        (tour, np.where(np.arange(len(tour)) == 7, np.nan, values), "finite"),
        (tour, np.where(np.arange(len(tour)) == 9, 1.5, values), "9"),
        (tour, np.full(len(tour), 0.5), "constant"),
    ]
    for n, (row_ids, vals, word) in enumerate(cases):
        await expect(
            grpc.StatusCode.INVALID_ARGUMENT,
            subs.UploadPredictions(
                upload_requests(
                    pb.UploadHeader(request_id=f"bad-{n}", round=opened.round, model_id=model.model_id), row_ids, vals
                ),
                metadata=md(keys.participant),
            ),
            word if word != "9" else "",
        )
    after = await subs.ListSubmissions(pb.ListSubmissionsRequest(round=opened.round), metadata=md(keys.operator))
    assert len(after.submissions) == len(before.submissions)


async def test_close_resolve_and_commitment(subs, keys, opened, model):
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        subs.ResolveRound(
            pb.ResolveRoundRequest(request_id="res-early", round=opened.round, use_generated_targets=True),
            metadata=md(keys.operator),
        ),
        "OPEN",
    )
    closed = await subs.CloseRound(
        pb.CloseRoundRequest(request_id="close-1", round=opened.round), metadata=md(keys.operator)
    )
    assert closed.round.state == pb.Round.STATE_CLOSED
    _, ids, _, splits, _, _ = await download(subs, opened.round, keys.participant)
    tour = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        subs.UploadPredictions(
            upload_requests(
                pb.UploadHeader(request_id="late", round=opened.round, model_id=model.model_id),
                tour,
                np.linspace(0.2, 0.8, len(tour)),
            ),
            metadata=md(keys.participant),
        ),
        "CLOSED",
    )
    # targets that differ from the commitment are refused
    rng = np.random.default_rng(1)
    wrong = rng.integers(0, 2, len(tour)).astype("<f4")
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        subs.ResolveRound(
            pb.ResolveRoundRequest(
                request_id="res-wrong",
                round=opened.round,
                targets=pb.TargetValues(ids="\n".join(tour).encode(), values=wrong.tobytes()),
            ),
            metadata=md(keys.operator),
        ),
        "committed",
    )
    resolved = await subs.ResolveRound(
        pb.ResolveRoundRequest(request_id="res-1", round=opened.round, use_generated_targets=True),
        metadata=md(keys.operator),
    )
    assert resolved.round.state == pb.Round.STATE_RESOLVED and len(resolved.commitment.salt_hex) == 64
    # anyone can now check the revealed targets against the commitment
    from services.submissions.domain import commitment

    chunks = [
        m async for m in subs.DownloadTargets(pb.DownloadTargetsRequest(round=opened.round), metadata=md(keys.other))
    ]
    published = chunks[0].commitment
    t_ids, t_vals, t_splits = [], [], []
    for m in chunks[1:]:
        t_ids += m.chunk.ids.decode().split("\n")
        t_vals.append(np.frombuffer(m.chunk.targets, dtype="<f4"))
        t_splits += list(m.chunk.splits)
    t_vals = np.concatenate(t_vals)
    mask = np.isin(t_splits, list(published.committed_splits))
    commitment.verify(
        published.commitment_sha256, np.asarray(t_ids)[mask], t_vals[mask], bytes.fromhex(published.salt_hex)
    )
    # the same targets through the explicit path now match: a second round proves acceptance
    again = await subs.ResolveRound(
        pb.ResolveRoundRequest(request_id="res-1", round=opened.round, use_generated_targets=True),
        metadata=md(keys.operator),
    )
    assert again.round.state == pb.Round.STATE_RESOLVED


async def test_explicit_matching_targets_are_accepted(subs, keys, tournament, services):
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="open-2", tournament_id=T, generated=SMALL), metadata=md(keys.operator)
        )
    ).round
    await subs.CloseRound(pb.CloseRoundRequest(request_id="close-2", round=opened.round), metadata=md(keys.operator))
    # the operator knows the generated targets: read them through the service stream scoring uses
    ids, vals = [], []
    async for m in subs.StreamRoundTargets(
        pb.StreamRoundTargetsRequest(round=opened.round), metadata=md(keys.services["scoring"])
    ):
        ids += m.chunk.ids.decode().split("\n")
        vals.append(np.frombuffer(m.chunk.targets, dtype="<f4"))
    vals = np.concatenate(vals)
    assert np.isnan(vals).sum() == opened.live_rows  # live targets hidden before resolve
    from services.submissions.domain.dataset import TargetKind, generate
    from services.submissions.usecases.rounds import spec_from_proto

    data = generate(spec_from_proto(SMALL, TargetKind.BINARY))
    lookup = dict(zip(data.ids.tolist(), data.targets.tolist(), strict=True))
    full = np.asarray([lookup[i] for i in ids], dtype="<f4")
    resolved = await subs.ResolveRound(
        pb.ResolveRoundRequest(
            request_id="res-2",
            round=opened.round,
            targets=pb.TargetValues(ids="\n".join(ids).encode(), values=full.tobytes()),
        ),
        metadata=md(keys.operator),
    )
    assert resolved.round.state == pb.Round.STATE_RESOLVED
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        subs.CloseRound(pb.CloseRoundRequest(request_id="close-again", round=opened.round), metadata=md(keys.operator)),
        "RESOLVED",
    )
