"""Attacks on the hidden validation targets through the public Ladder board, against the real services.

A participant who learns hidden targets before resolve can climb the public board and, where the
board feeds money, get paid for it. These tests play the attacks that worked before the Ladder was
kept per participant with its step private, and check that what they recover is chance.
"""

from __future__ import annotations

import itertools
import math

import grpc
import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import blt_address, download, upload_requests
from tests.support import table_checksums

T = "hidden"
SPEC = pb.GeneratedDatasetSpec(
    seed=21, n_train=1000, n_validation=2000, n_live=1200, n_features=4, n_training_eras=4, n_tournament_eras=10
)
PROBE_VALUES = (0.9, 0.75, 0.62, 0.55)  # one probed row each per upload: 16 distinguishable patterns on the old board
PROBED_ROWS = 1000
LN2 = math.log(2.0)


@pytest.fixture(scope="module")
async def scoring(services):
    async with grpc.aio.insecure_channel(services["scoring"].address) as channel:
        yield sc_grpc.ScoringServiceStub(channel)


async def new_participant(services, keys, name: str) -> tuple[str, str]:
    from crowdquant.cli.bootstrap import create_key
    from shared.auth import Role
    from shared.config import CommonSettings

    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        participant = (
            await id_grpc.IdentityServiceStub(channel).CreateParticipant(
                id_pb.CreateParticipantRequest(request_id=f"p-{name}", display_name=name), metadata=md(keys.operator)
            )
        ).participant
    url = services["submissions"].ctx.database.url
    key = await create_key(CommonSettings(), Role.PARTICIPANT, participant.participant_id, "", [], url=url)
    return participant.participant_id, key


@pytest.fixture(scope="module")
async def open_round(subs, keys):
    await subs.CreateTournament(
        pb.CreateTournamentRequest(
            request_id="t-hidden",
            tournament_id=T,
            target_kind=common_pb2.TARGET_KIND_BINARY,
            rules=pb.TournamentRules(upload=pb.UploadRules(min_std=-1, max_uploads_per_model_per_round=1000)),
        ),
        metadata=md(keys.operator),
    )
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-hidden", tournament_id=T, generated=SPEC), metadata=md(keys.operator)
        )
    ).round
    _, ids, _, splits, _, _ = await download(subs, opened.round, keys.participant)
    tour = splits != common_pb2.SPLIT_TRAINING
    tour_ids = [i for i, t in zip(ids, tour, strict=True) if t]
    return opened.round, tour_ids, splits[tour]


class Attacker:
    """A participant with models, uploading and reading its public Ladder score after each upload."""

    def __init__(self, subs, scoring, keys, ref, tour_ids, participant_key: str, name: str) -> None:
        self.subs, self.scoring, self.keys, self.ref = subs, scoring, keys, ref
        self.tournament_id = ref.tournament_id
        self.tour_ids, self.key, self.name = tour_ids, participant_key, name
        self.models: list[str] = []
        self.uploads = 0

    async def model(self, fresh: bool) -> str:
        """A fresh model for every query while the participant may create one, then the existing ones in turn."""
        if fresh:
            try:
                model = (
                    await self.subs.CreateModel(
                        pb.CreateModelRequest(
                            request_id=f"{self.name}-m{len(self.models)}",
                            tournament_id=self.tournament_id,
                            display_name=f"{self.name}-{len(self.models)}",
                            payout_address=blt_address(60),
                        ),
                        metadata=md(self.key),
                    )
                ).model
                self.models.append(model.model_id)
                return model.model_id
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION):
                    raise
        return self.models[self.uploads % len(self.models)]

    async def query(self, values: np.ndarray, fresh: bool = True) -> sc_pb.PublicScore:
        """Upload, then the public score the board shows for that model once the upload is judged.

        A score whose version is the one just uploaded is one this upload set: the board rewarded it.
        """
        model_id = await self.model(fresh)
        self.uploads += 1
        resp = await self.subs.UploadPredictions(
            upload_requests(
                pb.UploadHeader(request_id=f"{self.name}-u{self.uploads}", round=self.ref, model_id=model_id),
                self.tour_ids,
                values,
            ),
            metadata=md(self.key),
        )
        submission = resp.submission
        # what scoring does for each accepted upload when the public scores are next read, asked here
        # for this upload alone (as the operator) so the test reads exactly its judgement
        judged = await self.scoring.ScoreValidation(
            sc_pb.ScoreValidationRequest(
                request_id=f"v-{submission.submission_id}",
                round=self.ref,
                model_id=model_id,
                version=submission.version,
                content_sha256=submission.content_sha256,
            ),
            metadata=md(self.keys.operator),
        )
        self.last = (model_id, submission.version)
        return judged.public_score

    def rewarded(self, score: sc_pb.PublicScore) -> bool:
        return score.HasField("displayed_value") and (score.model.model_id, score.version) == self.last


def pattern_losses(values: tuple[float, ...]) -> np.ndarray:
    """Per-row loss of each probed row under each of the 2^k target patterns: shape (2^k, k)."""
    patterns = np.array(list(itertools.product((0, 1), repeat=len(values))), dtype=np.float64)
    p = np.asarray(values)
    return -(patterns * np.log(p) + (1 - patterns) * np.log(1 - p)), patterns


def decode(score: sc_pb.PublicScore, n_validation: int, rng: np.random.Generator) -> np.ndarray:
    """The attacker's best guess of the probed rows' targets from every public field it can read.

    The rest of the upload is 0.5, whose loss is exactly ln 2, so each target pattern predicts the mean
    validation loss and, for a model's first upload on a per-model Ladder, its step (the standard error
    of its own per-row losses). Fields the board does not publish tell nothing: a coin flip then.
    """
    losses, patterns = pattern_losses(PROBE_VALUES)
    k = len(PROBE_VALUES)
    total = losses.sum(axis=1) + (n_validation - k) * LN2
    means = total / n_validation
    fields = {f.name: value for f, value in score.ListFields()}
    if "step" in fields:
        squares = ((losses - means[:, None]) ** 2).sum(axis=1) + (n_validation - k) * (LN2 - means) ** 2
        steps = np.sqrt(squares / (n_validation - 1)) / math.sqrt(n_validation)
        return patterns[int(np.argmin(np.abs(steps - fields["step"])))]
    if "displayed_value" in fields:
        return patterns[int(np.argmin(np.abs(means - fields["displayed_value"])))]
    return rng.integers(0, 2, k).astype(np.float64)


async def revealed_targets(subs, keys, ref) -> np.ndarray:
    """Close and resolve the round; its tournament rows' targets, now public."""
    name = f"{ref.tournament_id}-{ref.round_number}"
    await subs.CloseRound(pb.CloseRoundRequest(request_id=f"c-{name}", round=ref), metadata=md(keys.operator))
    await subs.ResolveRound(
        pb.ResolveRoundRequest(request_id=f"r-{name}", round=ref, use_generated_targets=True),
        metadata=md(keys.operator),
    )
    targets, splits = [], []
    async for message in subs.DownloadTargets(pb.DownloadTargetsRequest(round=ref), metadata=md(keys.operator)):
        if message.WhichOneof("kind") == "chunk":
            targets.append(np.frombuffer(message.chunk.targets, dtype="<f4"))
            splits += list(message.chunk.splits)
    return np.concatenate(targets)[np.asarray(splits) != common_pb2.SPLIT_TRAINING]


async def test_per_participant_ladder_hides_a_fresh_models_score_and_the_step(
    subs, scoring, keys, services, open_round
):
    """A second model of the same participant starts on its participant's leader, not on a fresh Ladder."""
    ref, tour_ids, _ = open_round
    _, key = await new_participant(services, keys, "ladder-owner")
    owner = Attacker(subs, scoring, keys, ref, tour_ids, key, "owner")
    rng = np.random.default_rng(3)
    honest = np.clip(0.5 + rng.normal(0, 0.02, len(tour_ids)), 0.01, 0.99)
    first = await owner.query(honest)
    assert first.HasField("displayed_value") and first.displayed_value == round(first.displayed_value, 4)
    assert "step" not in sc_pb.PublicScore.DESCRIPTOR.fields_by_name
    again = await owner.query(honest)  # the same predictions from a fresh model: no new Ladder, no score
    assert not again.HasField("displayed_value") and again.versions_scored == 1
    board = (await scoring.GetPublicScores(sc_pb.GetPublicScoresRequest(round=ref), metadata=md(key))).public_scores
    assert owner.models[1] not in {s.model.model_id for s in board}
    assert owner.models[0] in {s.model.model_id for s in board}


async def test_scoring_judges_only_a_stored_upload_with_its_hash(subs, scoring, keys, services, open_round):
    """ScoreValidation names an upload; scoring reads its values itself and refuses any other hash."""
    ref, tour_ids, _ = open_round
    _, key = await new_participant(services, keys, "hash-checker")
    owner = Attacker(subs, scoring, keys, ref, tour_ids, key, "hash")
    await owner.query(np.full(len(tour_ids), 0.5) + np.linspace(-0.01, 0.01, len(tour_ids)))
    model_id = owner.models[0]
    url = services["scoring"].ctx.database.url
    before = await table_checksums(url, ("scoring",))
    cases = [
        (
            sc_pb.ScoreValidationRequest(
                request_id="x1", round=ref, model_id=model_id, version=1, content_sha256="0" * 64
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (
            sc_pb.ScoreValidationRequest(
                request_id="x2", round=ref, model_id=model_id, version=7, content_sha256="0" * 64
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            sc_pb.ScoreValidationRequest(
                request_id="x3", round=ref, model_id=model_id, version=1, content_sha256="not-a-hash"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for request, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await scoring.ScoreValidation(request, metadata=md(keys.operator))
        assert info.value.code() == code, info.value.details()
    assert await table_checksums(url, ("scoring",)) == before


async def test_step_and_spread_probes_recover_no_hidden_target(subs, scoring, keys, services, open_round):
    """(a) Uploads that are 0.5 everywhere but four probed validation rows, each from a fresh model.

    Before, a model's first upload showed the Ladder's step exactly: the standard error of its own
    per-row losses, which differs for each of the 16 target patterns of the probed rows, so every
    probe read four hidden targets (and a fresh model per query made every upload a first one). Now
    the step is private, a participant's models share one leader, and a probe that changes a few rows
    does not beat that leader: over 1,000 probed rows the attacker does no better than a coin.
    """
    ref, tour_ids, splits = open_round
    _, key = await new_participant(services, keys, "probe-pat")
    attacker = Attacker(subs, scoring, keys, ref, tour_ids, key, "probe")
    validation = np.flatnonzero(splits == common_pb2.SPLIT_VALIDATION)
    probed = np.random.default_rng(11).permutation(validation)[:PROBED_ROWS]
    guesses = np.zeros(PROBED_ROWS)
    rng = np.random.default_rng(12)
    k = len(PROBE_VALUES)
    for start in range(0, PROBED_ROWS, k):
        rows = probed[start : start + k]
        values = np.full(len(tour_ids), 0.5)
        values[rows] = PROBE_VALUES[: len(rows)]
        score = await attacker.query(values)
        guesses[start : start + k] = decode(score, len(validation), rng)[: len(rows)]
    truth = (await revealed_targets(subs, keys, ref))[probed]
    recovered = float(np.mean(guesses == truth))
    assert recovered <= 0.5 + 3 * math.sqrt(0.25 / PROBED_ROWS), f"recovered {recovered:.1%} of probed targets"


@pytest.fixture(scope="module")
async def boost_round(subs, keys):
    """A tournament with the default rules (upload limits included) and a round with 4 live eras."""
    await subs.CreateTournament(
        pb.CreateTournamentRequest(
            request_id="t-boost", tournament_id="boost", target_kind=common_pb2.TARGET_KIND_BINARY
        ),
        metadata=md(keys.operator),
    )
    spec = pb.GeneratedDatasetSpec()
    spec.CopyFrom(SPEC)
    spec.seed, spec.n_live = 22, 2000
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-boost", tournament_id="boost", generated=spec), metadata=md(keys.operator)
        )
    ).round
    _, ids, _, splits, _, _ = await download(subs, opened.round, keys.participant)
    tour = splits != common_pb2.SPLIT_TRAINING
    return opened.round, [i for i, t in zip(ids, tour, strict=True) if t], splits[tour]


async def test_boosting_attack_gains_nothing_on_the_resolved_board(subs, scoring, keys, services, boost_round):
    """(c) Blum & Hardt's boosting attack, with fresh models and the default upload limits.

    The attacker uploads about 200 random perturbations of one model, keeps those the public board
    rewarded and submits their majority. What the kept directions know is the validation targets;
    before, resolved scores averaged the validation eras too, so that knowledge moved the resolved
    board and the money. Now the resolved board is the live eras alone, which the attack never saw:
    the final submission's resolved logloss is within one standard error of the honest model's. (Its
    live gain is a draw centred on zero whatever the seed; one seeded run is checked. The per-participant
    Ladder also rewards few probes: 1 of 200 in this run, where a per-model Ladder rewards a fresh
    model's first upload every time.)
    """
    ref, tour_ids, splits = boost_round
    _, key = await new_participant(services, keys, "boost-bo")
    attacker = Attacker(subs, scoring, keys, ref, tour_ids, key, "boost")
    rng = np.random.default_rng(32)
    base = np.clip(0.5 + rng.normal(0, 0.02, len(tour_ids)), 0.01, 0.99)
    delta = 0.005
    await attacker.query(base)
    honest_model = attacker.last[0]
    kept, tried = [], 0
    for _ in range(200):
        direction = rng.choice([-1.0, 1.0], len(tour_ids))
        try:
            score = await attacker.query(base + delta * direction)
        except grpc.aio.AioRpcError as exc:  # the default limits: models per participant, uploads per model
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
            break
        tried += 1
        if attacker.rewarded(score):
            kept.append(direction)
    boosted = base + delta * np.sign(np.sum(kept, axis=0)) if kept else base
    await attacker.query(boosted)
    boosted_model = attacker.last[0]
    targets = await revealed_targets(subs, keys, ref)
    run = (
        await scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id="score-boost", round=ref), metadata=md(keys.operator)
        )
    ).run
    assert run.state == sc_pb.ScoringRun.STATE_SUCCEEDED, run.error_message

    async def resolved(model_id: str) -> float:
        scores = (
            await scoring.GetScores(sc_pb.GetScoresRequest(round=ref, model_id=model_id), metadata=md(keys.operator))
        ).scores
        return scores.logloss.overall

    gain = await resolved(honest_model) - await resolved(boosted_model)
    live = splits == common_pb2.SPLIT_LIVE

    def losses(p: np.ndarray) -> np.ndarray:
        y = targets[live]
        return -(y * np.log(p[live]) + (1 - y) * np.log(1 - p[live]))

    standard_error = float(np.std(losses(boosted) - losses(base), ddof=1) / math.sqrt(live.sum()))
    validation = splits == common_pb2.SPLIT_VALIDATION
    y = targets[validation]
    on_validation = float(
        np.mean(-(y * np.log(base[validation]) + (1 - y) * np.log(1 - base[validation])))
        - np.mean(-(y * np.log(boosted[validation]) + (1 - y) * np.log(1 - boosted[validation])))
    )
    assert tried >= 150 and kept, f"the attack ran {tried} probes and kept {len(kept)}"
    assert on_validation > 0, "the kept directions must carry what the board leaked about validation"
    assert abs(gain) <= standard_error, f"resolved gain {gain:.2e} vs one standard error {standard_error:.2e}"
