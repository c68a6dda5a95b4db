"""Hundreds of generated bad uploads: each refused with a message naming the problem, nothing stored."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import SMALL, blt_address, download, upload_requests
from tests.support import table_checksums

T = "fuzz"
SMALLER = pb.GeneratedDatasetSpec(
    seed=11, n_train=500, n_validation=300, n_live=100, n_features=4, n_training_eras=5, n_tournament_eras=3
)
assert SMALLER.n_validation < SMALL.n_validation


@pytest.fixture(scope="module")
async def fuzz_round(subs, keys):
    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-fuzz", tournament_id=T, target_kind=1), metadata=md(keys.operator)
    )
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="open-f", tournament_id=T, generated=SMALLER), metadata=md(keys.operator)
        )
    ).round
    model = (
        await subs.CreateModel(
            pb.CreateModelRequest(request_id="m-f", tournament_id=T, display_name="fz", payout_address=blt_address(9)),
            metadata=md(keys.participant),
        )
    ).model
    _, ids, _, splits, _, _ = await download(subs, opened.round, keys.participant)
    tour = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    return opened, model, tour


# Each family breaks a valid upload in one way; the word must appear in the error message.
FAMILIES = [
    "drop",
    "duplicate",
    "unknown",
    "nan",
    "inf",
    "above",
    "below",
    "constant",
    "empty_id",
    "mismatch",
    "no_chunks",
    "odd_bytes",
    "unicode_id",
    "sql_id",
    "huge_id",
]


@st.composite
def bad_upload(draw, tour: list[str]):
    family = draw(st.sampled_from(FAMILIES))
    n = len(tour)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = list(tour)
    values = rng.uniform(0.05, 0.95, n)
    k = draw(st.integers(1, min(30, n - 1)))
    at = rng.choice(n, size=k, replace=False)
    raw_chunks = None
    if family == "drop":
        ids = [i for j, i in enumerate(ids) if j not in set(at)]
        values = np.delete(values, at)
        word = "missing"
    elif family == "duplicate":
        ids = ids + [ids[j] for j in at]
        values = np.append(values, values[at])
        word = "duplicate"
    elif family == "unknown":
        for j in at:
            ids[j] = f"zz{j}"
        word = "unknown"
    elif family in ("nan", "inf"):
        values[at] = np.nan if family == "nan" else draw(st.sampled_from([np.inf, -np.inf]))
        word = "finite"
    elif family == "above":
        values[at] = draw(st.floats(1.0001, 1e30))
        word = "[0, 1]"
    elif family == "below":
        values[at] = draw(st.floats(-1e30, -0.0001))
        word = "[0, 1]"
    elif family == "constant":
        values[:] = draw(st.floats(0, 1))
        word = "constant"
    elif family == "empty_id":
        ids[at[0]] = ""
        word = ""
    elif family == "unicode_id":
        ids[at[0]] = draw(st.text(min_size=1, max_size=20).filter(lambda s: "\n" not in s and s not in tour))
        word = ""
    elif family == "sql_id":
        ids[at[0]] = "t1'; DROP TABLE submissions.submissions; --"
        word = "unknown"
    elif family == "huge_id":
        ids[at[0]] = "x" * 5000
        word = ""
    elif family == "mismatch":
        raw_chunks = [pb.PredictionsChunk(ids="\n".join(ids).encode(), values=values[:-k].astype("<f4").tobytes())]
        word = "pair up"
    elif family == "no_chunks":
        raw_chunks = []
        word = "no predictions"
    else:  # odd_bytes
        raw_chunks = [pb.PredictionsChunk(ids="\n".join(ids).encode(), values=values.astype("<f4").tobytes() + b"x")]
        word = "float32"
    return family, ids, values, raw_chunks, word


def requests_for(header, ids, values, raw_chunks):
    if raw_chunks is None:
        return upload_requests(header, ids, values, chunk=97)

    async def gen():
        yield pb.UploadPredictionsRequest(header=header)
        for c in raw_chunks:
            yield pb.UploadPredictionsRequest(chunk=c)

    return gen()


async def test_500_bad_uploads_are_refused_and_change_nothing(subs, keys, fuzz_round, database_url):
    opened, model, tour = fuzz_round
    before = await table_checksums(database_url, ["submissions"])
    seen: dict[str, int] = {}
    cases = []

    @settings(
        max_examples=500,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=bad_upload(tour))
    def collect(case):
        cases.append(case)

    collect()
    assert len(cases) >= 500
    for n, (family, ids, values, raw_chunks, word) in enumerate(cases):
        header = pb.UploadHeader(request_id=f"fz-{n}", round=opened.round, model_id=model.model_id)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await subs.UploadPredictions(requests_for(header, ids, values, raw_chunks), metadata=md(keys.participant))
        err = info.value
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (family, err.code(), err.details())
        assert word.lower() in err.details().lower(), (family, err.details())
        assert len(err.details()) < 4000
        seen[family] = seen.get(family, 0) + 1
    assert set(seen) == set(FAMILIES), seen
    after = await table_checksums(database_url, ["submissions"])
    # refused uploads store nothing; only the idempotency claims of refused requests were rolled back too
    assert before == after
