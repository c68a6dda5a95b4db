"""Deposits and stakes over real gRPC + Postgres: balances, locks while a round is at risk, clear errors
that change nothing (table checksums), and the stake policy's gains and burns within +-5% of the stake."""

from __future__ import annotations

import grpc
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.money import MAX_MONEY
from tests.integration.conftest import md
from tests.integration.payouts import scenario
from tests.support import table_checksums

T = "stakes"
DEPOSIT = 1_000_000
STAKES = {"linear": 400_000, "half": 300_000, "noise": 200_000, "inverse": 250_000, "copy": 100_000}


@pytest.fixture(scope="module")
async def staked(stubs):
    t = await scenario.tournament(
        stubs,
        T,
        address_seed=20,
        tournament_rules=scenario.rules(policy=common_pb2.PAYOUT_POLICY_STAKE, require_originality=True),
    )
    await scenario.deposit_and_stake(stubs, t, STAKES, DEPOSIT)
    return t


async def code_of(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def balance(payouts, keys, participant_id: str) -> po_pb.ParticipantBalance:
    return (
        await payouts.GetParticipantBalance(
            po_pb.GetParticipantBalanceRequest(participant_id=participant_id), metadata=md(keys.operator)
        )
    ).balance


async def test_deposit_and_stake_move_balances(payouts, keys, staked):
    linear = staked.players["linear"]
    own = (await payouts.GetParticipantBalance(po_pb.GetParticipantBalanceRequest(), metadata=md(linear.key))).balance
    assert (own.available_satoshis, own.staked_satoshis, own.payable_satoshis) == (600_000, 400_000, 0)
    stake = (await payouts.GetStake(po_pb.GetStakeRequest(model_id=linear.model_id), metadata=md(linear.key))).stake
    assert stake.amount_satoshis == 400_000 and not stake.locked and stake.participant_id == linear.participant_id
    again = await payouts.RecordDeposit(
        po_pb.RecordDepositRequest(
            request_id=f"dep-{T}-linear", participant_id=linear.participant_id, amount_satoshis=DEPOSIT
        ),
        metadata=md(keys.operator),
    )
    assert again.balance.available_satoshis == DEPOSIT  # the same request gets the first result (before staking)
    assert (await balance(payouts, keys, linear.participant_id)).available_satoshis == 600_000  # no second credit
    err = await code_of(
        payouts.RecordDeposit(
            po_pb.RecordDepositRequest(
                request_id=f"dep-{T}-linear", participant_id=linear.participant_id, amount_satoshis=5
            ),
            metadata=md(keys.operator),
        )
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_bad_amounts_are_refused_and_change_nothing(payouts, keys, staked, database_url):
    linear = staked.players["linear"]
    before = await table_checksums(database_url, ["payouts"])
    cases = [
        (
            payouts.SetStake(
                po_pb.SetStakeRequest(request_id="s-above", model_id=linear.model_id, amount_satoshis=1_000_001),
                metadata=md(linear.key),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "short by 1 sat",
        ),
        (
            payouts.SetStake(
                po_pb.SetStakeRequest(request_id="s-neg", model_id=linear.model_id, amount_satoshis=-1),
                metadata=md(linear.key),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "negative",
        ),
        (
            payouts.SetStake(
                po_pb.SetStakeRequest(request_id="s-huge", model_id=linear.model_id, amount_satoshis=MAX_MONEY + 1),
                metadata=md(linear.key),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "21 million",
        ),
        (
            payouts.SetStake(
                po_pb.SetStakeRequest(request_id="s-other", model_id=linear.model_id, amount_satoshis=1),
                metadata=md(staked.players["noise"].key),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "another",
        ),
        (
            payouts.SetStake(
                po_pb.SetStakeRequest(request_id="s-op", model_id=linear.model_id, amount_satoshis=1),
                metadata=md(keys.operator),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "operator",
        ),
        (
            payouts.SetStake(
                po_pb.SetStakeRequest(request_id="s-none", model_id="m_nosuchmodel", amount_satoshis=1),
                metadata=md(linear.key),
            ),
            grpc.StatusCode.NOT_FOUND,
            "m_nosuchmodel",
        ),
        (
            payouts.SetStake(
                po_pb.SetStakeRequest(model_id=linear.model_id, amount_satoshis=1), metadata=md(linear.key)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "request_id",
        ),
        (
            payouts.RecordDeposit(
                po_pb.RecordDepositRequest(request_id="d-zero", participant_id=linear.participant_id),
                metadata=md(keys.operator),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "more than 0",
        ),
        (
            payouts.RecordDeposit(
                po_pb.RecordDepositRequest(
                    request_id="d-neg", participant_id=linear.participant_id, amount_satoshis=-10
                ),
                metadata=md(keys.operator),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "negative",
        ),
        (
            payouts.RecordDeposit(
                po_pb.RecordDepositRequest(
                    request_id="d-max", participant_id=linear.participant_id, amount_satoshis=2**63 - 1
                ),
                metadata=md(keys.operator),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "21 million",
        ),
        (
            payouts.RecordDeposit(
                po_pb.RecordDepositRequest(request_id="d-who", participant_id="p_nobody", amount_satoshis=10),
                metadata=md(keys.operator),
            ),
            grpc.StatusCode.NOT_FOUND,
            "p_nobody",
        ),
        (
            payouts.RecordDeposit(
                po_pb.RecordDepositRequest(
                    request_id="d-aud", participant_id=linear.participant_id, amount_satoshis=10
                ),
                metadata=md(keys.auditor),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "auditor",
        ),
    ]
    for call, code, words in cases:
        err = await code_of(call)
        assert err.code() == code, err.details()
        assert words in err.details(), err.details()
    with pytest.raises(TypeError):  # an amount is an int64: a float cannot even be put into the request
        po_pb.SetStakeRequest(request_id="s-float", model_id=linear.model_id, amount_satoshis=1.5)
    assert await table_checksums(database_url, ["payouts"]) == before


async def test_wrong_network_address_is_refused_at_model_creation(stubs, keys, staked):
    player = staked.players["noise"]
    err = await code_of(
        stubs.subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-testnet",
                tournament_id=T,
                display_name="wrong-net",
                payout_address="tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
            ),
            metadata=md(player.key),
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "testnet" in err.details()


async def test_stake_is_locked_while_at_risk_then_burned_or_grown_within_five_percent(
    stubs, payouts, audit, keys, staked
):
    ref = await scenario.open_round(stubs, staked, seed=5)
    await scenario.upload_all(stubs, staked, ref, seed=5)
    linear = staked.players["linear"]

    async def change_stake(request_id: str):  # type: ignore[no-untyped-def]
        return await payouts.SetStake(
            po_pb.SetStakeRequest(request_id=request_id, model_id=linear.model_id, amount_satoshis=10_000),
            metadata=md(linear.key),
        )

    err = await code_of(change_stake("s-locked-open"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and f"{T} round 1" in err.details()
    stake = (await payouts.GetStake(po_pb.GetStakeRequest(model_id=linear.model_id), metadata=md(keys.auditor))).stake
    assert stake.locked and [r.round_number for r in stake.locking_rounds] == [1]
    unchanged = await payouts.SetStake(
        po_pb.SetStakeRequest(request_id="s-same", model_id=linear.model_id, amount_satoshis=400_000),
        metadata=md(linear.key),
    )
    assert unchanged.stake.amount_satoshis == 400_000  # setting the same amount moves nothing: allowed

    await scenario.close_resolve_score(stubs, ref)
    round_stakes = await payouts.GetRoundStakes(po_pb.GetRoundStakesRequest(round=ref), metadata=md(keys.operator))
    assert {s.model_id: s.stake_satoshis for s in round_stakes.stakes} == {
        staked.players[k].model_id: v for k, v in STAKES.items()
    }
    assert round_stakes.total_stake_satoshis == sum(STAKES.values())
    err = await code_of(change_stake("s-locked-scored"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION  # scored but not yet allocated: still at risk

    allocation = (
        await payouts.AllocateRound(
            po_pb.AllocateRoundRequest(request_id="a-stake", round=ref), metadata=md(keys.operator)
        )
    ).allocation
    assert allocation.policy == common_pb2.PAYOUT_POLICY_STAKE
    by_model = {line.model.model_id: line for line in allocation.lines}
    for kind, amount in STAKES.items():
        line = by_model[staked.players[kind].model_id]
        assert line.stake_satoshis == amount and abs(line.amount_satoshis) <= amount * 5 // 100
    assert by_model[staked.players["inverse"].model_id].amount_satoshis == 0  # not original: not eligible
    assert "not original" in by_model[staked.players["copy"].model_id].ineligible_reason
    linear_line = by_model[linear.model_id]
    assert linear_line.amount_satoshis == 20_000  # CORR/MMC far above the clip: +5% of 400,000
    noise = staked.players["noise"]
    after = await balance(payouts, keys, noise.participant_id)
    assert after.staked_satoshis == STAKES["noise"] + min(0, by_model[noise.model_id].amount_satoshis)
    assert (await balance(payouts, keys, linear.participant_id)).payable_satoshis == 20_000

    moved = await change_stake("s-after")  # allocated: the stake is free again
    assert moved.stake.amount_satoshis == 10_000 and not moved.stake.locked
    assert (await balance(payouts, keys, linear.participant_id)).available_satoshis == DEPOSIT - 10_000
    snapshot = await payouts.GetRoundStakes(po_pb.GetRoundStakesRequest(round=ref), metadata=md(keys.operator))
    assert {s.model_id: s.stake_satoshis for s in snapshot.stakes}[linear.model_id] == 400_000
    trial = await audit.GetTrialBalance(au_pb.GetTrialBalanceRequest(), metadata=md(keys.auditor))
    assert trial.balanced


async def test_list_stakes_pages_and_privacy(payouts, keys, staked):
    seen, token = [], ""
    while True:
        page = await payouts.ListStakes(
            po_pb.ListStakesRequest(page_size=2, page_token=token), metadata=md(keys.operator)
        )
        seen += [s.model_id for s in page.stakes]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == len(STAKES)
    noise = staked.players["noise"]
    own = await payouts.ListStakes(po_pb.ListStakesRequest(), metadata=md(noise.key))
    assert [s.model_id for s in own.stakes] == [noise.model_id]
    err = await code_of(
        payouts.ListStakes(
            po_pb.ListStakesRequest(participant_id=staked.players["linear"].participant_id),
            metadata=md(noise.key),
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await code_of(
        payouts.GetStake(po_pb.GetStakeRequest(model_id=staked.players["linear"].model_id), metadata=md(noise.key))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await code_of(payouts.ListStakes(po_pb.ListStakesRequest(page_size=-1), metadata=md(keys.operator)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
