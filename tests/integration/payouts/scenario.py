"""Payout scenarios over the real services: participants with models, deposits, stakes, scored rounds.

Shared by the payouts integration tests and the crash test (which runs payouts as a real process).
Every call goes over gRPC with the role a real caller would have; predictions are a small logistic
model fitted on the round's training rows, plus variants (a near copy, noise, a constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import numpy as np

from crowdquant.cli.bootstrap import create_key
from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as sub_grpc
from shared.auth import Role
from shared.config import CommonSettings
from tests.integration.conftest import md
from tests.integration.submissions.conftest import blt_address, download, upload_requests

SMALL = pb.GeneratedDatasetSpec(
    n_train=3000,
    n_validation=900,
    n_live=900,
    n_features=6,
    n_training_eras=8,
    n_tournament_eras=8,  # 4 validation and 4 live eras of 225 rows
    signal_strength=0.6,
)
KINDS = ("linear", "half", "noise", "copy", "inverse")


@dataclass
class Player:
    name: str
    participant_id: str
    key: str
    model_id: str = ""
    address: str = ""


@dataclass
class Stubs:
    subs: sub_grpc.SubmissionsServiceStub
    scoring: sc_grpc.ScoringServiceStub
    payouts: po_grpc.PayoutsServiceStub
    identity: id_grpc.IdentityServiceStub
    operator: str
    database_url: str


@dataclass
class Tournament:
    tournament_id: str
    players: dict[str, Player] = field(default_factory=dict)


def rules(policy: int = common_pb2.PAYOUT_POLICY_POOL, pool: int = 1_000_000, **payout: object) -> pb.TournamentRules:
    return pb.TournamentRules(
        upload=pb.UploadRules(min_std=-1),
        scoring=pb.ScoringRules(bootstrap_samples=50),
        payout=pb.PayoutRules(policy=policy, pool=common_pb2.PoolParameters(pool_satoshis=pool), **payout),
    )


async def tournament(
    stubs: Stubs,
    tournament_id: str,
    kinds: tuple[str, ...] = KINDS,
    tournament_rules: pb.TournamentRules | None = None,
    address_seed: int = 0,
) -> Tournament:
    """A tournament with one participant and one model per kind (distinct payout addresses)."""
    await stubs.subs.CreateTournament(
        pb.CreateTournamentRequest(
            request_id=f"t-{tournament_id}",
            tournament_id=tournament_id,
            target_kind=common_pb2.TARGET_KIND_BINARY,
            rules=tournament_rules or rules(),
        ),
        metadata=md(stubs.operator),
    )
    result = Tournament(tournament_id)
    for index, kind in enumerate(kinds):
        name = f"{tournament_id}-{kind}"
        participant = (
            await stubs.identity.CreateParticipant(
                id_pb.CreateParticipantRequest(request_id=f"p-{name}", display_name=name),
                metadata=md(stubs.operator),
            )
        ).participant
        key = await create_key(
            CommonSettings(), Role.PARTICIPANT, participant.participant_id, "", [], url=stubs.database_url
        )
        address = blt_address(address_seed + index + 1)
        model = (
            await stubs.subs.CreateModel(
                pb.CreateModelRequest(
                    request_id=f"m-{name}",
                    tournament_id=tournament_id,
                    display_name=name,
                    payout_address=address,
                ),
                metadata=md(key),
            )
        ).model
        result.players[kind] = Player(kind, participant.participant_id, key, model.model_id, address)
    return result


async def deposit_and_stake(stubs: Stubs, t: Tournament, stakes: dict[str, int], deposit: int) -> None:
    for kind, amount in stakes.items():
        player = t.players[kind]
        await stubs.payouts.RecordDeposit(
            po_pb.RecordDepositRequest(
                request_id=f"dep-{t.tournament_id}-{kind}",
                participant_id=player.participant_id,
                amount_satoshis=deposit,
            ),
            metadata=md(stubs.operator),
        )
        await stubs.payouts.SetStake(
            po_pb.SetStakeRequest(
                request_id=f"stake-{t.tournament_id}-{kind}", model_id=player.model_id, amount_satoshis=amount
            ),
            metadata=md(player.key),
        )


def _predictions(kind: str, linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if kind == "linear":
        return linear
    if kind == "half":
        return 0.5 + 0.6 * (linear - 0.5) + rng.normal(0, 0.035, len(linear))  # |Pearson| with linear ~0.9: original
    if kind == "copy":
        return linear + rng.normal(0, 1e-4, len(linear))
    if kind == "inverse":
        return 1 - linear
    if kind == "constant":
        return np.full(len(linear), 0.5)
    return rng.uniform(0.3, 0.7, len(linear))


async def open_round(stubs: Stubs, t: Tournament, seed: int) -> common_pb2.RoundRef:
    spec = pb.GeneratedDatasetSpec()
    spec.CopyFrom(SMALL)
    spec.seed = seed
    return (
        await stubs.subs.OpenRound(
            pb.OpenRoundRequest(
                request_id=f"open-{t.tournament_id}-{seed}", tournament_id=t.tournament_id, generated=spec
            ),
            metadata=md(stubs.operator),
        )
    ).round.round


async def upload_all(
    stubs: Stubs, t: Tournament, ref: common_pb2.RoundRef, seed: int, kinds: tuple[str, ...] | None = None
) -> None:
    any_key = next(iter(t.players.values())).key
    _, ids, _, splits, feats, targets = await download(stubs.subs, ref, any_key)
    train = splits == common_pb2.SPLIT_TRAINING
    x = np.c_[feats, np.ones(len(feats))].astype(np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(8):
        p = 1 / (1 + np.exp(-x[train] @ w))
        hess = (x[train] * (p * (1 - p))[:, None]).T @ x[train] + 1e-6 * np.eye(x.shape[1])
        w += np.linalg.solve(hess, x[train].T @ (targets[train] - p))
    tour = ~train
    tour_ids = [i for i, flag in zip(ids, tour, strict=True) if flag]
    linear = 1 / (1 + np.exp(-x[tour] @ w))
    rng = np.random.default_rng(seed)
    for kind in kinds or tuple(t.players):
        player = t.players[kind]
        values = np.clip(_predictions(kind, linear, rng), 0.001, 0.999)
        await stubs.subs.UploadPredictions(
            upload_requests(
                pb.UploadHeader(request_id=f"u-{t.tournament_id}-{seed}-{kind}", round=ref, model_id=player.model_id),
                tour_ids,
                values,
            ),
            metadata=md(player.key),
        )


async def close_resolve_score(stubs: Stubs, ref: common_pb2.RoundRef) -> None:
    tag = f"{ref.tournament_id}-{ref.round_number}"
    await stubs.subs.CloseRound(pb.CloseRoundRequest(request_id=f"close-{tag}", round=ref), metadata=md(stubs.operator))
    await stubs.subs.ResolveRound(
        pb.ResolveRoundRequest(request_id=f"resolve-{tag}", round=ref, use_generated_targets=True),
        metadata=md(stubs.operator),
    )
    # as the pipeline does: payouts' stakes at close weigh the meta model
    staked = await stubs.payouts.GetRoundStakes(po_pb.GetRoundStakesRequest(round=ref), metadata=md(stubs.operator))
    stakes = [sc_pb.ModelStake(model_id=s.model_id, stake_satoshis=s.stake_satoshis) for s in staked.stakes]
    run = (
        await stubs.scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id=f"score-{tag}", round=ref, stakes=stakes), metadata=md(stubs.operator)
        )
    ).run
    assert run.state == sc_pb.ScoringRun.STATE_SUCCEEDED, run.error_message


async def scored_round(stubs: Stubs, t: Tournament, seed: int) -> common_pb2.RoundRef:
    ref = await open_round(stubs, t, seed)
    await upload_all(stubs, t, ref, seed)
    await close_resolve_score(stubs, ref)
    return ref


def stubs_on(channels: dict[str, grpc.aio.Channel], operator: str, database_url: str) -> Stubs:
    return Stubs(
        sub_grpc.SubmissionsServiceStub(channels["submissions"]),
        sc_grpc.ScoringServiceStub(channels["scoring"]),
        po_grpc.PayoutsServiceStub(channels["payouts"]),
        id_grpc.IdentityServiceStub(channels["submissions"]),
        operator,
        database_url,
    )
