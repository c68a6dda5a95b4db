"""Upload checks: every round row exactly once, sane values; the result aligned to row order.

Why so strict: a submission is scored on every validation and live row, and later stacked with
everyone else's into the meta model, so a missing row, a duplicated id, a NaN or a value outside
[0, 1] would either break scoring or silently change it. The checks collect *every* problem of an
upload (not just the first) and name up to 10 offending rows of each kind with counts, so a
participant can fix the file in one go; nothing is stored unless all pass.

Values are checked after rounding to float32, the precision they are stored and scored at: a
float64 1.0000000001 is stored as 1.0 and accepted under [0, 1], while under an open interval
(logloss tournaments, where 0 and 1 would cost infinite loss) 0.99999999 rounds to 1.0 and is
refused. "Constant" means a standard deviation below ``min_std`` (the tournament's
``UploadRules.min_std``, default 1e-6; numerai-tools uses 1e-8) or all values equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crowdquant.formats.errors import MAX_EXAMPLES
from shared.errors import InvalidArgument

from .errors import Problem, UploadRejected
from .row_index import RoundRows, as_id_array

DEFAULT_MIN_STD = 1e-6


@dataclass(frozen=True)
class ValueRule:
    """Allowed prediction values: [0, 1] by default, or the open (eps, 1 - eps) when set.

    ``UploadRules.open_interval = true`` maps to ``open_interval_eps=0.0``, i.e. (0, 1).
    """

    open_interval_eps: float | None = None
    min_std: float = DEFAULT_MIN_STD

    def __post_init__(self) -> None:
        eps = self.open_interval_eps
        if eps is not None and not 0.0 <= eps < 0.5:
            raise InvalidArgument(f"open interval eps must be in [0, 0.5), got {eps}")
        if not self.min_std >= 0.0:
            raise InvalidArgument(f"min_std must be >= 0, got {self.min_std}")

    def describe(self) -> str:
        eps = self.open_interval_eps
        return "[0, 1]" if eps is None else f"({eps:g}, {1 - eps:g})"

    def outside(self, values: np.ndarray) -> np.ndarray:
        """Mask of values outside the allowed range (NaN counts as inside: it is reported apart)."""
        eps = self.open_interval_eps
        if eps is None:
            return (values < 0.0) | (values > 1.0)
        return (values <= np.float32(eps)) | (values >= np.float32(1.0 - eps))


MAX_ID_SHOWN = 40


def _shown(row_id: object) -> str:
    """An id as quoted in a message, cut short so a hostile id can't bloat the error."""
    text = str(row_id)
    return repr(text) if len(text) <= MAX_ID_SHOWN else repr(text[:MAX_ID_SHOWN]) + f"… ({len(text)} chars)"


def _at(upload_ids: np.ndarray, indices: np.ndarray) -> list[str]:
    return [f"{_shown(upload_ids[i])} (upload index {int(i)})" for i in indices[:MAX_EXAMPLES]]


def _id_problems(rows: RoundRows, upload_ids: np.ndarray, positions: np.ndarray) -> list[Problem]:
    problems = []
    unknown = np.flatnonzero(positions < 0)
    if unknown.size:
        problems.append(
            Problem("unknown ids", int(unknown.size), tuple(_at(upload_ids, unknown)), "not rows of this round")
        )
    counts = np.bincount(positions[positions >= 0], minlength=len(rows))
    repeated = np.flatnonzero(counts > 1)
    if repeated.size:
        examples: list[str] = []
        for row in repeated[:MAX_EXAMPLES]:
            where = np.flatnonzero(positions == row)[:MAX_EXAMPLES].tolist()
            examples.append(f"{_shown(rows.ids[row])} {int(counts[row])} times (upload indices {where})")
        problems.append(Problem("duplicate ids", int(repeated.size), tuple(examples), "each id must appear once"))
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        missing_examples = tuple(_shown(rows.ids[row]) for row in missing[:MAX_EXAMPLES])
        problems.append(
            Problem(
                "missing ids",
                int(missing.size),
                missing_examples,
                f"every one of the round's {len(rows)} validation and live ids is needed",
            )
        )
    return problems


def _value_problems(upload_ids: np.ndarray, original: np.ndarray, values: np.ndarray, rule: ValueRule) -> list[Problem]:
    problems = []
    finite = np.isfinite(original)
    bad = np.flatnonzero(~finite)
    if bad.size:
        examples = tuple(f"{float(original[i])!r} at {e}" for i, e in zip(bad, _at(upload_ids, bad), strict=False))
        problems.append(Problem("non-finite values", int(bad.size), examples, "NaN and infinity are not predictions"))
    with np.errstate(invalid="ignore"):
        outside = np.flatnonzero(finite & rule.outside(values))
    if outside.size:
        examples = tuple(
            f"{float(original[i])!r} at {e}" for i, e in zip(outside, _at(upload_ids, outside), strict=False)
        )
        problems.append(
            Problem(
                "values out of range",
                int(outside.size),
                examples,
                f"predictions must lie in {rule.describe()} (as float32)",
            )
        )
    usable = values[finite]
    if usable.size and rule.min_std > 0:  # min_std 0: the tournament admits constant predictions
        std = float(np.std(usable, dtype=np.float64))
        all_equal = bool(usable.min() == usable.max())
        if std < rule.min_std or all_equal:
            example = f"all equal {float(usable[0])!r}" if all_equal else f"std {std:.3g}"
            detail = f"predictions must vary between rows, with a standard deviation >= {rule.min_std:g}"
            problems.append(Problem("constant predictions", int(usable.size), (example,), detail, per_row=False))
    return problems


def _pair(ids: Sequence[str] | np.ndarray, values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    upload_ids = as_id_array(ids)
    original = np.asarray(values)
    if original.ndim != 1 or original.dtype.kind not in "fiu":
        raise InvalidArgument(
            f"values must be a flat array of numbers, got dtype {original.dtype} shape {original.shape}"
        )
    if len(upload_ids) != len(original):
        raise InvalidArgument(f"upload has {len(upload_ids)} ids but {len(original)} values; they must pair up")
    return upload_ids, original


def _positions(rows: RoundRows, upload_ids: np.ndarray) -> np.ndarray:
    if len(upload_ids) == 0:
        raise UploadRejected([Problem("rows", 0, (), f"all {len(rows)} rows of the round are needed")])
    if len(upload_ids) == len(rows) and np.array_equal(upload_ids, rows.ids):
        return np.arange(len(rows))  # already in row order: the usual case, no lookup needed
    return rows.positions(upload_ids)


def check_upload(
    rows: RoundRows,
    ids: Sequence[str] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    rule: ValueRule | None = None,
) -> np.ndarray:
    """Validate an upload and return its predictions as float32 in the round's row order.

    ``ids[i]`` is the row id of ``values[i]``; any order is accepted. Raises ``UploadRejected``
    (INVALID_ARGUMENT) listing every problem found, each with counts and the first 10 rows.
    """
    rule = rule or ValueRule()
    upload_ids, original = _pair(ids, values)
    positions = _positions(rows, upload_ids)
    with np.errstate(over="ignore", invalid="ignore"):
        values32 = original.astype(np.float32)
    problems = _id_problems(rows, upload_ids, positions) + _value_problems(upload_ids, original, values32, rule)
    if problems:
        raise UploadRejected(problems)
    aligned = np.empty(len(rows), dtype=np.float32)
    aligned[positions] = values32
    return aligned + np.float32(0.0)  # -0.0 -> 0.0, so equal predictions have equal bytes


def align_to_rows(rows: RoundRows, ids: Sequence[str] | np.ndarray, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Values keyed by row id in the round's row order (float64), with the id checks only.

    For data that are not predictions, e.g. targets revealed at resolve: every row exactly once,
    but no range or constancy rule (their own checks, like the commitment's, apply after).
    """
    upload_ids, original = _pair(ids, values)
    positions = _positions(rows, upload_ids)
    problems = _id_problems(rows, upload_ids, positions)
    if problems:
        raise UploadRejected(problems)
    aligned = np.empty(len(rows), dtype=np.float64)
    aligned[positions] = original
    return aligned
