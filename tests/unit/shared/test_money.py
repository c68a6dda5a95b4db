"""shared.money: exact BTC text, integer-only amounts, and splits whose parts add up to the whole."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import InvalidArgument
from shared.money import MAX_MONEY, format_btc, largest_remainder_split, parse_btc, require_satoshis

weights_strategy = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=10**12),
        st.fractions(min_value=0, max_value=1000, max_denominator=10**6),
        st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
).filter(lambda ws: any(w > 0 for w in ws))


# --- parse / format ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sats"),
    [
        ("0.00012345", 12_345),
        ("1", 100_000_000),
        ("1.", 100_000_000),
        (".5", 50_000_000),
        (" 0.00000001 ", 1),
        ("21000000", MAX_MONEY),
        ("0000.10000000", 10_000_000),
        ("+2.5", 250_000_000),
        ("-0", 0),
    ],
)
def test_parse_btc_is_exact(text: str, sats: int) -> None:
    assert parse_btc(text) == sats


def test_parse_btc_accepts_decimal_and_negative_on_request() -> None:
    assert parse_btc(Decimal("0.1")) == 10_000_000
    assert parse_btc("-0.00000546", allow_negative=True) == -546


@pytest.mark.parametrize(
    "bad",
    [
        0.1,
        1,
        None,
        b"1",
        "1e-8",
        "0.123456789",
        "abc",
        "",
        "1,5",
        "0x10",
        "NaN",
        "21000000.00000001",
        "1 000",
    ],
)
def test_parse_btc_refuses_floats_and_inexact_text(bad: object) -> None:
    with pytest.raises(InvalidArgument):
        parse_btc(bad)  # type: ignore[arg-type]


def test_parse_btc_refuses_negative_unless_asked() -> None:
    with pytest.raises(InvalidArgument, match="negative"):
        parse_btc("-0.1")
    with pytest.raises(InvalidArgument):
        parse_btc(Decimal("Infinity"))


def test_parse_btc_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_btc("0.123456789", field="stake")
    assert "stake" in err.value.message and err.value.metadata["field"] == "stake"


@given(st.integers(min_value=-MAX_MONEY, max_value=MAX_MONEY))
def test_format_then_parse_round_trips(sats: int) -> None:
    text = format_btc(sats)
    assert len(text.split(".")[1]) == 8
    assert parse_btc(text, allow_negative=True) == sats


def test_format_btc() -> None:
    assert format_btc(0) == "0.00000000"
    assert format_btc(546) == "0.00000546"
    assert format_btc(-150_000_000) == "-1.50000000"
    with pytest.raises(InvalidArgument):
        format_btc(1.0)  # type: ignore[arg-type]


# --- require_satoshis -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, False, 1.0, 0.5, "5", None, Decimal(5), Fraction(5), np.float64(3)])
def test_require_satoshis_refuses_non_integers(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="integer number of satoshis"):
        require_satoshis(bad, "amount")


def test_require_satoshis_accepts_integral_types_and_checks_sign() -> None:
    assert require_satoshis(np.int64(7)) == 7 and type(require_satoshis(np.int64(7))) is int
    assert require_satoshis(-3, allow_negative=True) == -3
    with pytest.raises(InvalidArgument, match="negative"):
        require_satoshis(-1, "stake")
    with pytest.raises(InvalidArgument, match="more than 0"):
        require_satoshis(0, "amount", allow_zero=False)
    with pytest.raises(InvalidArgument, match="21 million"):
        require_satoshis(MAX_MONEY + 1)


# --- largest_remainder_split --------------------------------------------------------------------------


def test_split_blnk_73_case_adds_up() -> None:
    # Blnk #73 stored 2.5 split 50% / 45% / rest as 1.25 / 1.13 / 0.13 = 2.51.
    parts = largest_remainder_split(250, [50, 45, 5])
    assert parts == [125, 113, 12] and sum(parts) == 250


def test_split_ties_go_to_the_lower_index() -> None:
    assert largest_remainder_split(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder_split(2, [1, 1, 1, 1]) == [1, 1, 0, 0]


def test_split_zero_weight_gets_nothing() -> None:
    assert largest_remainder_split(7, [0, 3, 0]) == [0, 7, 0]


@pytest.mark.parametrize("weights", [[], [0, 0], [0.0]])
def test_split_with_no_positive_weight_is_refused(weights: list) -> None:
    with pytest.raises(InvalidArgument, match="weights are zero"):
        largest_remainder_split(100, weights)


@pytest.mark.parametrize("weights", [[1, -1], [float("nan")], [float("inf")], [True], ["1"]])
def test_split_refuses_bad_weights(weights: list) -> None:
    with pytest.raises(InvalidArgument):
        largest_remainder_split(100, weights)


def test_split_refuses_bad_totals() -> None:
    with pytest.raises(InvalidArgument):
        largest_remainder_split(10.0, [1])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        largest_remainder_split(-1, [1])


@settings(max_examples=400, deadline=None)
@given(total=st.integers(min_value=0, max_value=MAX_MONEY), weights=weights_strategy)
def test_split_sums_exactly_and_each_part_is_within_one_of_its_share(total: int, weights: list) -> None:
    parts = largest_remainder_split(total, weights)
    assert sum(parts) == total
    assert all(isinstance(p, int) and p >= 0 for p in parts)
    exact_weights = [Fraction(w) for w in weights]
    weight_sum = sum(exact_weights)
    for part, w in zip(parts, exact_weights, strict=True):
        share = total * w / weight_sum
        assert abs(part - share) < 1


@settings(max_examples=300, deadline=None)
@given(total=st.integers(min_value=0, max_value=10**15), weights=weights_strategy)
def test_split_is_monotone_in_weight(total: int, weights: list) -> None:
    parts = largest_remainder_split(total, weights)
    exact = [Fraction(w) for w in weights]
    for i in range(len(parts)):
        for j in range(len(parts)):
            if exact[i] > exact[j]:
                assert parts[i] >= parts[j]


@settings(max_examples=200, deadline=None)
@given(total=st.integers(min_value=0, max_value=10**12), weights=weights_strategy)
def test_split_is_deterministic_and_scale_free(total: int, weights: list) -> None:
    parts = largest_remainder_split(total, weights)
    assert largest_remainder_split(total, list(weights)) == parts
    assert largest_remainder_split(total, [Fraction(w) * 7 for w in weights]) == parts


def test_split_sums_exactly_over_ten_thousand_seeded_cases() -> None:
    """Many cheap cases on top of hypothesis' shrinking ones: no satoshi is ever created or lost."""
    rng = random.Random(20260523)
    for _ in range(10_000):
        total = rng.randrange(0, 10 ** rng.randrange(1, 16))
        weights = [rng.choice([0, rng.randrange(1, 10**9), rng.random()]) for _ in range(rng.randrange(1, 12))]
        if not any(weights):
            weights[0] = 1
        parts = largest_remainder_split(total, weights)
        assert sum(parts) == total
        weight_sum = sum(Fraction(w) for w in weights)
        assert all(abs(p - total * Fraction(w) / weight_sum) < 1 for p, w in zip(parts, weights, strict=True))
