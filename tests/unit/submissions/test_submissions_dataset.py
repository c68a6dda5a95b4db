"""The synthetic 2016-shaped data: sizes, ids, eras, targets and the weak signal."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest

from services.scoring.domain.eras import consistency
from services.scoring.domain.metrics import per_row_logloss
from services.submissions.domain.dataset import (
    NUMERAI_2016_TOURNAMENT_ROWS,
    NUMERAI_2016_TRAINING_ROWS,
    Dataset,
    DatasetSpec,
    Split,
    TargetKind,
    generate,
    tournament_eras,
)
from shared.errors import InvalidArgument


def logloss(predictions: np.ndarray, targets: np.ndarray) -> float:
    return float(per_row_logloss(predictions, targets).mean())


def era_logloss(predictions: np.ndarray, rows: Dataset) -> np.ndarray:
    losses = per_row_logloss(predictions, rows.targets)
    return np.asarray([losses[rows.eras == era].mean() for era in np.unique(rows.eras)])


def test_default_shape_is_the_2016_release(full_round: Dataset) -> None:
    assert full_round.training().n_rows == NUMERAI_2016_TRAINING_ROWS == 96_320
    assert full_round.tournament().n_rows == NUMERAI_2016_TOURNAMENT_ROWS == 36_072
    assert full_round.n_features == 21
    assert full_round.features.dtype == np.float32 and full_round.targets.dtype == np.float32
    assert set(np.unique(full_round.targets).tolist()) == {0.0, 1.0}


def test_rows_are_ordered_training_validation_live_with_increasing_eras(small_round: Dataset) -> None:
    split = small_round.split
    assert (np.diff(split) >= 0).all()
    assert (np.diff(small_round.eras) >= 0).all()
    for s in Split:  # every era belongs to one split only
        eras_here = set(small_round.eras[split == s].tolist())
        others = set(small_round.eras[split != s].tolist())
        assert eras_here and not eras_here & others
    assert len(np.unique(small_round.eras[split == Split.VALIDATION])) == 4
    assert len(np.unique(small_round.eras[split == Split.LIVE])) == 4


def test_ids_are_unique_t_ids_that_do_not_leak_the_split(small_round: Dataset) -> None:
    ids = small_round.ids
    assert len(set(ids.tolist())) == len(ids)
    assert all(re.fullmatch(r"t\d{6}", i) for i in ids.tolist())
    numbers = np.array([int(i[1:]) for i in ids.tolist()])
    # Shuffled numbering: the training rows' numbers are spread over the whole range, not a prefix.
    training_numbers = numbers[small_round.split == Split.TRAINING]
    assert training_numbers.max() > len(training_numbers) * 1.2
    assert abs(np.corrcoef(numbers, np.arange(len(numbers)))[0, 1]) < 0.1


def test_generation_is_reproducible_and_seeded(small_spec: DatasetSpec) -> None:
    a, b = generate(small_spec), generate(small_spec)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.features, b.features)
    assert np.array_equal(a.targets, b.targets)
    c = generate(DatasetSpec(**{**small_spec.__dict__, "seed": 8}))
    assert not np.array_equal(a.features, c.features)


def test_graded_targets_take_five_values_with_mode_one_half(small_spec: DatasetSpec) -> None:
    graded = generate(DatasetSpec(**{**small_spec.__dict__, "target_kind": TargetKind.GRADED}))
    values, counts = np.unique(graded.targets, return_counts=True)
    assert values.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert values[np.argmax(counts)] == 0.5
    assert graded.target_kind is TargetKind.GRADED
    assert logloss(np.full(graded.n_rows, 0.5), graded.targets) == pytest.approx(math.log(2))


def test_hidden_view_keeps_only_training_targets(small_round: Dataset) -> None:
    hidden = small_round.with_hidden_targets()
    assert not np.isnan(hidden.targets[small_round.mask(Split.TRAINING)]).any()
    assert np.isnan(hidden.targets[small_round.mask(Split.VALIDATION, Split.LIVE)]).all()
    assert not np.isnan(small_round.targets).any()  # the original is untouched


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_training", 0),
        ("n_features", 0),
        ("n_validation_eras", 0),
        ("n_live_eras", 10_000),
        ("signal", -1.0),
    ],
)
def test_bad_specs_name_the_field(small_spec: DatasetSpec, field: str, value: float) -> None:
    with pytest.raises(InvalidArgument, match=field):
        generate(DatasetSpec(**{**small_spec.__dict__, field: value}))


def test_signal_is_weak_like_2016(full_round: Dataset, fit_logistic: Callable[..., Callable]) -> None:
    """Constant 0.5 scores ln 2; a logistic model fitted on training scores ~0.690-0.693."""
    training = full_round.training()
    model = fit_logistic(training.features, training.targets)
    for split, worst in ((Split.VALIDATION, 0.692), (Split.LIVE, 0.693)):
        rows = full_round.select(full_round.mask(split))
        assert logloss(np.full(rows.n_rows, 0.5), rows.targets) == pytest.approx(math.log(2), abs=1e-12)
        assert 0.690 <= logloss(model(rows.features), rows.targets) <= worst
    assert abs(float(full_round.targets.mean()) - 0.5) < 0.01
    for split in (Split.VALIDATION, Split.LIVE):
        rows = full_round.select(full_round.mask(split))
        share = consistency(era_logloss(model(rows.features), rows))[0]
        assert 0.5 <= share <= 1.0  # beats ln 2 in most eras, as a good 2017 model did


def test_live_rows_span_six_eras_the_size_of_validation_eras(full_round: Dataset) -> None:
    """Live rows alone decide the resolved board, so they need several eras for per-era statistics."""
    for split, eras in ((Split.VALIDATION, 12), (Split.LIVE, 6)):
        labels, sizes = np.unique(full_round.eras[full_round.split == split], return_counts=True)
        assert len(labels) == eras and (sizes == 2_004).all()


@pytest.mark.parametrize(
    ("n_eras", "n_validation", "n_live", "expected"),
    [
        (18, 24_048, 12_024, (12, 6)),  # the 2016 sizes: eras of 2,004 rows each
        (10, 3_000, 2_000, (6, 4)),  # the demo's --small round
        (3, 300, 100, (2, 1)),
        (1, 500, 500, (1, 1)),  # each split gets an era even when too few are asked for
        (4, 1_000, 1, (3, 1)),
    ],
)
def test_tournament_eras_are_shared_in_proportion_to_rows(
    n_eras: int, n_validation: int, n_live: int, expected: tuple[int, int]
) -> None:
    shared = tournament_eras(n_eras, n_validation, n_live)
    assert (shared["n_validation_eras"], shared["n_live_eras"]) == expected
