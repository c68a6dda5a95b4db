"""Copies gain nothing: a participant's zero-stake near-copies of its own model, over the real services.

Under the pool policy zero-stake models stay out of the meta model, so a copy of a model would collect
the same MMC again. Originality now compares an upload with the participant's other models too (only
earlier versions of the same model are left out), so each copy is flagged NOT_ORIGINAL, naming the
model it copies, and the participant's share of the pool is the same with 0, 1, 4 or 9 copies.
Each round is the same generated data (one seed) with the same predictions; only the copies differ.
"""

from __future__ import annotations

import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.payouts import scenario
from tests.integration.submissions.conftest import blt_address, download, upload_requests

T = "selfcopy"
POOL = 1_000_000
SEED = 7
STAKES = {"linear": 300_000, "other": 200_000, "noise": 100_000}
PLAYERS = (*STAKES, "selfish")  # selfish stakes nothing: its MMC is measured against the others' meta model


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = np.zeros(x.shape[1])
    for _ in range(8):
        p = 1 / (1 + np.exp(-x @ w))
        w += np.linalg.solve((x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(x.shape[1]), x.T @ (y - p))
    return w


def predictions(feats: np.ndarray, splits: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Independent models (different features, their own quirks), and the near-copies of "selfish"
    (the best model, unstaked: a copy of it would earn its MMC once more)."""
    train = splits == common_pb2.SPLIT_TRAINING
    rng = np.random.default_rng(SEED)
    out = {}
    for name, cols, quirk in (("linear", slice(0, 2), 0.5), ("other", slice(2, 4), 0.5), ("selfish", slice(None), 0.2)):
        x = np.c_[feats[:, cols], np.ones(len(feats))].astype(np.float64)
        logits = x[~train] @ _logistic(x[train], targets[train])
        logits += rng.normal(0, quirk * logits.std(), len(logits))
        out[name] = 1 / (1 + np.exp(-logits))
    out["noise"] = rng.uniform(0.3, 0.7, int((~train).sum()))
    for i in range(9):
        out[f"copy-{i}"] = out["selfish"] + rng.normal(0, 1e-4, len(out["selfish"]))
    return {k: np.clip(v, 0.001, 0.999) for k, v in out.items()}


@pytest.fixture(scope="module")
async def cast(stubs):
    rules = scenario.rules(policy=common_pb2.PAYOUT_POLICY_POOL, pool=POOL)  # originality required by default
    t = await scenario.tournament(stubs, T, kinds=PLAYERS, tournament_rules=rules, address_seed=60)
    await scenario.deposit_and_stake(stubs, t, STAKES, 1_000_000)
    selfish = t.players["selfish"]
    copies = []
    for i in range(9):  # the same participant's other models, never staked
        model = (
            await stubs.subs.CreateModel(
                pb.CreateModelRequest(
                    request_id=f"m-{T}-copy-{i}",
                    tournament_id=T,
                    display_name=f"{T}-selfish-copy-{i}",
                    payout_address=blt_address(80 + i),
                ),
                metadata=md(selfish.key),
            )
        ).model
        copies.append(model.model_id)
    return t, copies


async def play(stubs, t: scenario.Tournament, copies: list[str], k: int) -> po_pb.Allocation:
    spec = pb.GeneratedDatasetSpec()
    spec.CopyFrom(scenario.SMALL)
    spec.seed = SEED
    ref = (
        await stubs.subs.OpenRound(
            pb.OpenRoundRequest(request_id=f"open-{T}-{k}", tournament_id=T, generated=spec),
            metadata=md(stubs.operator),
        )
    ).round.round
    _, ids, _, splits, feats, targets = await download(stubs.subs, ref, t.players["selfish"].key)
    splits = np.asarray(splits)
    values = predictions(feats, splits, targets)
    tour_ids = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    uploads = [(name, t.players[name].model_id, t.players[name].key, values[name]) for name in PLAYERS]
    uploads += [(f"copy-{i}", copies[i], t.players["selfish"].key, values[f"copy-{i}"]) for i in range(k)]
    for name, model_id, key, v in uploads:  # the copies come after the model they copy
        await stubs.subs.UploadPredictions(
            upload_requests(pb.UploadHeader(request_id=f"u-{T}-{k}-{name}", round=ref, model_id=model_id), tour_ids, v),
            metadata=md(key),
        )
    await scenario.close_resolve_score(stubs, ref)
    await stubs.payouts.AllocateRound(
        po_pb.AllocateRoundRequest(request_id=f"a-{T}-{k}", round=ref), metadata=md(stubs.operator)
    )
    return (
        await stubs.payouts.GetAllocation(po_pb.GetAllocationRequest(round=ref), metadata=md(stubs.operator))
    ).allocation


async def test_self_copies_leave_the_participants_share_unchanged(stubs, cast):
    t, copies = cast
    selfish = t.players["selfish"]
    shares, originals = {}, {}
    for k in (0, 1, 4, 9):
        allocation = await play(stubs, t, copies, k)
        assert allocation.total_satoshis == POOL
        mine = [line for line in allocation.lines if line.model.participant_id == selfish.participant_id]
        assert len(mine) == 1 + k
        shares[k] = sum(line.amount_satoshis for line in mine) / POOL
        originals[k] = {
            line.model.model_id: line.amount_satoshis for line in allocation.lines if line.model.model_id not in copies
        }
        for line in mine:
            if line.model.model_id == selfish.model_id:  # the first model keeps its eligibility
                assert line.eligible and line.amount_satoshis > 0 and not line.HasField("zero_payout")
                continue
            assert line.amount_satoshis == 0 and not line.eligible
            why = line.zero_payout
            assert why.code == common_pb2.ZERO_PAYOUT_REASON_NOT_ORIGINAL
            assert why.other_submission.startswith(selfish.model_id + " v")  # the model it copies
            assert why.value > 0.95 and why.threshold == pytest.approx(0.95)
            assert why.detail.startswith("not original: |Pearson|") and selfish.model_id in why.detail
    assert shares[0] > 0
    assert shares[1] == shares[4] == shares[9] == shares[0], shares
    assert originals[1] == originals[4] == originals[9] == originals[0]  # nobody's amount moved


async def test_a_participant_reads_the_reasons_of_its_own_lines(stubs, cast):
    t, copies = cast
    selfish = t.players["selfish"]
    ref = common_pb2.RoundRef(tournament_id=T, round_number=4)  # the round with nine copies
    request = po_pb.GetAllocationRequest(round=ref)
    own = (await stubs.payouts.GetAllocation(request, metadata=md(selfish.key))).allocation
    assert {line.model.participant_id for line in own.lines} == {selfish.participant_id}
    reasons = {line.model.model_id: line.zero_payout.code for line in own.lines if line.HasField("zero_payout")}
    assert reasons == {m: common_pb2.ZERO_PAYOUT_REASON_NOT_ORIGINAL for m in copies}
