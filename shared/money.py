"""Integer satoshis: parsing, formatting, validation and exact splitting.

Every amount in crowdquant is an ``int`` number of satoshis. Floats never carry money: a float cannot
hold 0.1 BTC exactly, and a sum of rounded float shares drifts from the total (Blnk #73 stored a 2.5
split as 2.51). Decimal strings are the only text form, parsed exactly; splits use the largest-remainder
method so the parts add up to the whole, to the satoshi.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from shared.errors import InvalidArgument

Satoshis = int
"""An amount in satoshis (1 BTC = 100,000,000). A plain ``int`` so it maps to SQL BIGINT unchanged."""

SATOSHIS_PER_BTC = 100_000_000
MAX_MONEY = 21_000_000 * SATOSHIS_PER_BTC
"""No amount can exceed all bitcoin that will ever exist; larger values are typing mistakes."""

_BTC_TEXT = re.compile(r"^([+-]?)(\d+)(?:\.(\d*))?$|^([+-]?)\.(\d+)$")


def require_satoshis(
    value: object,
    field: str = "amount",
    *,
    allow_negative: bool = False,
    allow_zero: bool = True,
) -> Satoshis:
    """Return ``value`` as an ``int`` of satoshis, or raise InvalidArgument naming ``field``.

    Refuses ``bool`` (``True`` would silently be 1 sat) and ``float`` (inexact); accepts ``int`` and other
    integral types such as ``numpy.int64`` because money columns come back from numpy and SQL as those.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(
            f"{field} must be an integer number of satoshis, not {type(value).__name__} ({value!r})",
            metadata={"field": field},
        )
    amount = int(value)
    if amount < 0 and not allow_negative:
        raise InvalidArgument(f"{field} must not be negative (got {amount} sat)", metadata={"field": field})
    if amount == 0 and not allow_zero:
        raise InvalidArgument(f"{field} must be more than 0 sat", metadata={"field": field})
    if abs(amount) > MAX_MONEY:
        raise InvalidArgument(
            f"{field} of {amount} sat is more than the 21 million BTC that can exist",
            metadata={"field": field},
        )
    return amount


def parse_btc(text: str | Decimal, *, allow_negative: bool = False, field: str = "amount") -> Satoshis:
    """Parse a BTC amount written in decimal ("0.00012345") into exact satoshis.

    Only strings (or ``Decimal``) are accepted: a float has already lost the exact value. More than eight
    decimals would be a fraction of a satoshi and is refused rather than rounded, so a typo never moves
    money silently. Exponents ("1e-8") are refused for the same reason: people do not write amounts so.
    """
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise InvalidArgument(f"{field} must be a finite amount, not {text}", metadata={"field": field})
        text = format(text, "f")
    if not isinstance(text, str):
        raise InvalidArgument(
            f"{field} must be a decimal string such as '0.00012345' BTC, not {type(text).__name__}",
            metadata={"field": field},
        )
    match = _BTC_TEXT.match(text.strip())
    if match is None:
        raise InvalidArgument(
            f"{field} {text!r} is not a decimal BTC amount such as '0.00012345'", metadata={"field": field}
        )
    if match.group(2) is not None:
        sign, whole, decimals = match.group(1), match.group(2), match.group(3) or ""
    else:
        sign, whole, decimals = match.group(4), "0", match.group(5)
    whole = whole.lstrip("0") or "0"
    if len(whole) > 9:  # more than 21,000,000 BTC either way; also keeps Decimal within its precision
        raise InvalidArgument(
            f"{field} {text!r} is more than the 21 million BTC that can exist", metadata={"field": field}
        )
    if len(decimals) > 8:
        raise InvalidArgument(
            f"{field} {text!r} has {len(decimals)} decimals; BTC amounts have at most 8 (1 sat = 0.00000001)",
            metadata={"field": field},
        )
    # At most 9 + 8 digits: well inside Decimal's 28-digit precision, so scaleb is exact.
    amount = int(Decimal(f"{whole}.{decimals or '0'}").scaleb(8))
    if sign == "-" and amount:
        if not allow_negative:
            raise InvalidArgument(f"{field} {text!r} must not be negative", metadata={"field": field})
        amount = -amount
    return require_satoshis(amount, field, allow_negative=allow_negative)


def format_btc(amount: Satoshis) -> str:
    """Format satoshis as BTC with all eight decimals ("-0.00000546"), the exact inverse of parse_btc."""
    sats = require_satoshis(amount, allow_negative=True)
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), SATOSHIS_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


def _as_weight(weight: object, index: int) -> Fraction:
    where = {"field": f"weights[{index}]"}
    if isinstance(weight, bool) or not isinstance(weight, (numbers.Rational, float)):
        raise InvalidArgument(
            f"weight #{index} must be an int, Fraction or float, not {type(weight).__name__}", metadata=where
        )
    if isinstance(weight, float) and not math.isfinite(weight):
        raise InvalidArgument(f"weight #{index} must be finite, not {weight}", metadata=where)
    exact = Fraction(weight)  # floats convert exactly (their binary value), so the split is deterministic
    if exact < 0:
        raise InvalidArgument(f"weight #{index} must not be negative (got {weight})", metadata=where)
    return exact


def largest_remainder_split(total: Satoshis, weights: Sequence[int | Fraction | float]) -> list[Satoshis]:
    """Split ``total`` satoshis in proportion to ``weights`` so the parts sum to ``total`` exactly.

    Each part first gets the floor of its exact share ``total * w / sum(w)``; the satoshis left over (fewer
    than the number of parts) go one each to the parts with the largest fractional remainders, ties to
    the lower index. Hence every part is within 1 sat of its exact share, a larger weight never gets less
    than a smaller one, and the result is deterministic.

    All-zero (or no) weights raise InvalidArgument: nobody is entitled to anything, and returning zeros
    would lose ``total``. Callers that mean "allocate nothing" (the pool policy with no positive
    contribution) check for that case before splitting.
    """
    amount = require_satoshis(total, "total")
    exact = [_as_weight(w, i) for i, w in enumerate(weights)]
    weight_sum = sum(exact, Fraction(0))
    if weight_sum == 0:
        raise InvalidArgument(
            f"cannot split {amount} sat: all {len(exact)} weights are zero", metadata={"field": "weights"}
        )
    parts: list[int] = []
    remainders: list[Fraction] = []
    for w in exact:
        share = amount * w / weight_sum
        floor = share.numerator // share.denominator
        parts.append(floor)
        remainders.append(share - floor)
    left = amount - sum(parts)
    order = sorted(range(len(exact)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        parts[i] += 1
    return parts
