"""Attack 7(b), the consistency probe: nothing an upload is told may reveal a hidden target.

A participant uploads probes, 0.5 everywhere except one validation row set to 0.999 or to 0.001
(a seeded coin picks), one probe for each of 1,000 distinct validation rows. From everything the
platform answers about those uploads (the upload responses, the signed receipts, ListSubmissions
and GetSubmission; not the Ladder public score, which is tested with the Ladder) it guesses each
row's target. It tries every number in those answers as a decoder, two ways: "this number is above
its mean over all probes, so the platform liked my probe (guess its direction)" and "above its
mean, so the target is 1"; ties go to a coin. Pass: the best decoder's per-row recovery stays within
3 standard errors of chance, either way (an attacker who knows the orientation flips a
consistently wrong decoder).

This would have failed on main: every upload carried a ``consistency`` CheckResult, the share of
validation eras whose logloss beats ln 2, computed with the hidden targets. A 0.5 prediction ties
ln 2 exactly, so a probe that is right about its row lifts its era below ln 2 (value 1/eras, reason
"... in 1 of N validation eras") and a wrong one doesn't (value 0): the first decoder recovered
100% of the rows. Consistency is now judged at resolve on live eras, and every upload check is
target-free.

Economical: a small round (1,050 validation rows), the per-model upload limit raised to 1,000 in
this tournament's rules, three models of one participant, uploads sent a few at a time; each
probed row costs one upload.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import blt_address, download, upload_requests

T = "probe"
SPEC = pb.GeneratedDatasetSpec(
    seed=23, n_train=200, n_validation=1_050, n_live=300, n_features=4, n_training_eras=2, n_tournament_eras=9
)
PROBED_ROWS = 1_000
MODELS = 3
HIGH, LOW = 0.999, 0.001
CONCURRENT = 6
GET_SAMPLE = 100

# What identifies an upload rather than describing it: its own content hash, version, times and
# signature. They depend only on what the participant sent and when, so the attacker ignores them;
# every other field (any check result, and any field added later) is evidence.
SUBMISSION_IDENTITY = (
    "name",
    "submission_id",
    "round",
    "model_id",
    "participant_id",
    "version",
    "latest",
    "content_sha256",
    "row_count",
    "accept_time",
)
RECEIPT_IDENTITY = (
    "round",
    "model_id",
    "version",
    "content_sha256",
    "row_count",
    "accept_time",
    "key_id",
    "signature",
    "signed_payload",
)


def evidence(message, identity: tuple[str, ...]):
    """A copy of the message without the fields that only identify the upload."""
    out = type(message)()
    out.CopyFrom(message)
    for name in identity:
        out.ClearField(name)
    return out


def numbers(message) -> list[float]:
    """Every number in a message, unset ones too (as their zero), depth first in field order.

    Walking the schema rather than the set fields keeps each number at one position for every probe.
    """
    found: list[float] = []
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        values = list(value) if field.is_repeated else [value]
        for v in values:
            if field.type == field.TYPE_MESSAGE:
                found += numbers(v)
            elif isinstance(v, bool | int | float):
                found.append(float(v))
    return found


def recoveries(rows: list[list[float]], directions: np.ndarray, targets: np.ndarray, coins: np.ndarray) -> list[float]:
    """Per-row recovery of every decoder: each number position, read relative to the probe or absolutely."""
    width = max(len(r) for r in rows)
    matrix = np.asarray([r + [np.nan] * (width - len(r)) for r in rows])  # a missing number is its own value
    found = []
    for column in matrix.T:
        filled = np.where(np.isnan(column), -np.inf, column)
        above, below = filled > np.nanmean(column), filled < np.nanmean(column)
        favoured = np.where(above, directions, np.where(below, 1 - directions, coins))
        absolute = np.where(above, 1, np.where(below, 0, coins))
        found += [float(np.mean(favoured == targets)), float(np.mean(absolute == targets))]
    return found


@pytest.fixture(scope="module")
async def probed_round(subs, keys):
    await subs.CreateTournament(
        pb.CreateTournamentRequest(
            request_id="t-probe",
            tournament_id=T,
            display_name="Probe",
            target_kind=common_pb2.TARGET_KIND_BINARY,
            network=common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST,
            rules=pb.TournamentRules(upload=pb.UploadRules(max_uploads_per_model_per_round=1_000)),
        ),
        metadata=md(keys.operator),
    )
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-probe", tournament_id=T, generated=SPEC), metadata=md(keys.operator)
        )
    ).round
    models = [
        (
            await subs.CreateModel(
                pb.CreateModelRequest(
                    request_id=f"m-probe-{i}",
                    tournament_id=T,
                    display_name=f"probe-{i}",
                    payout_address=blt_address(60 + i),
                ),
                metadata=md(keys.participant),
            )
        ).model.model_id
        for i in range(MODELS)
    ]
    return opened, models


async def test_upload_answers_do_not_reveal_validation_targets(subs, keys, probed_round):
    opened, models = probed_round
    _, ids, _, splits, _, _ = await download(subs, opened.round, keys.participant)
    tour = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    tour_splits = np.asarray([s for s in splits if s != common_pb2.SPLIT_TRAINING])
    rng = np.random.default_rng(2026)
    probed = rng.choice(np.flatnonzero(tour_splits == common_pb2.SPLIT_VALIDATION), PROBED_ROWS, replace=False)

    directions = rng.integers(0, 2, PROBED_ROWS)  # 1: the row is set to 0.999, 0: to 0.001
    version_of: dict[int, tuple[str, int]] = {}
    seen: dict[tuple[str, int], list] = {}
    gate = asyncio.Semaphore(CONCURRENT)

    async def send(model_id: str, mine: np.ndarray) -> None:
        for n in mine:
            values = np.full(len(tour), 0.5)
            values[probed[n]] = HIGH if directions[n] else LOW
            header = pb.UploadHeader(request_id=f"probe-{n}", round=opened.round, model_id=model_id)
            async with gate:
                resp = await subs.UploadPredictions(
                    upload_requests(header, tour, values, chunk=len(tour)), metadata=md(keys.participant)
                )
            key = (model_id, resp.submission.version)
            version_of[int(n)] = key
            seen[key] = [evidence(resp.submission, SUBMISSION_IDENTITY), evidence(resp.receipt, RECEIPT_IDENTITY)]

    shares = np.array_split(np.arange(PROBED_ROWS), len(models))
    await asyncio.gather(*(send(m, share) for m, share in zip(models, shares, strict=True)))
    assert len(version_of) == PROBED_ROWS

    # what the platform says later about the same uploads: every listed one, and a sample read one by one
    listed: dict[tuple[str, int], pb.Submission] = {}
    token = ""
    while True:
        page = await subs.ListSubmissions(
            pb.ListSubmissionsRequest(round=opened.round, page_size=1_000, page_token=token),
            metadata=md(keys.participant),
        )
        listed.update({(s.model_id, s.version): s for s in page.submissions})
        token = page.next_page_token
        if not token:
            break
    assert set(listed) == set(seen)
    for key, submission in listed.items():
        seen[key].append(evidence(submission, SUBMISSION_IDENTITY))
    for key in [version_of[int(n)] for n in rng.choice(PROBED_ROWS, GET_SAMPLE, replace=False)]:
        got = await subs.GetSubmission(
            pb.GetSubmissionRequest(round=opened.round, model_id=key[0], version=key[1]), metadata=md(keys.participant)
        )
        assert got.submission == listed[key]
    answers = [[x for message in seen[version_of[n]] for x in numbers(message)] for n in range(PROBED_ROWS)]
    distinct = len({tuple(a) for a in answers})

    # grade against the targets the round reveals once resolved
    await subs.CloseRound(pb.CloseRoundRequest(request_id="c-probe", round=opened.round), metadata=md(keys.operator))
    await subs.ResolveRound(
        pb.ResolveRoundRequest(request_id="r-probe", round=opened.round, use_generated_targets=True),
        metadata=md(keys.operator),
    )
    truth: dict[str, float] = {}
    async for m in subs.DownloadTargets(pb.DownloadTargetsRequest(round=opened.round), metadata=md(keys.participant)):
        if m.HasField("chunk"):
            truth.update(
                zip(m.chunk.ids.decode().split("\n"), np.frombuffer(m.chunk.targets, dtype="<f4").tolist(), strict=True)
            )
    targets = np.asarray([truth[tour[int(row)]] for row in probed])
    assert set(np.unique(targets).tolist()) == {0.0, 1.0}

    found = recoveries(answers, directions, targets, rng.integers(0, 2, PROBED_ROWS))
    best = max(max(r, 1 - r) for r in found)
    bound = 0.5 + 3 * math.sqrt(0.25 / PROBED_ROWS)
    assert best <= bound, (
        f"a decoder recovered {best:.1%} of {PROBED_ROWS} probed validation targets (chance bound {bound:.1%}); "
        f"the answers took {distinct} distinct forms"
    )
