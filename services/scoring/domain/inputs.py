"""Validation of the arrays every scoring function takes, with messages that say what to fix."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidScoringInput

__all__ = ["check_mask", "check_predictions", "check_vector", "present"]


def check_predictions(predictions: ArrayLike, n_rows: int | None = None) -> NDArray[np.floating]:
    """A (n_models, n_rows) floating matrix; returned as is (never copied, never modified)."""
    array = np.asarray(predictions)
    if array.ndim != 2 or (n_rows is not None and array.shape[1] != n_rows):
        expected = "n_rows" if n_rows is None else f"n_rows={n_rows}"
        raise InvalidScoringInput(f"predictions must be a (n_models, {expected}) matrix, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidScoringInput(f"predictions must be floating point, got {array.dtype}")
    return array


def check_vector(name: str, values: ArrayLike, n: int) -> NDArray[np.float64]:
    """One finite float per row."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise InvalidScoringInput(f"{name} must have one value per row ({n}), got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InvalidScoringInput(f"{name} must be finite; row {int(bad[0])} is {array[bad[0]]} ({bad.size} such rows)")
    return array


def check_mask(mask: ArrayLike | None, shape: tuple[int, ...]) -> NDArray[np.bool_] | None:
    """Optional boolean matrix shaped like the predictions: True where a submission has the row."""
    if mask is None:
        return None
    array = np.asarray(mask)
    if array.shape != shape or array.dtype != np.bool_:
        raise InvalidScoringInput(
            f"mask must be a boolean matrix shaped like predictions {shape}, got {array.dtype} {array.shape}"
        )
    return array


def present(block: NDArray[np.floating], mask_block: NDArray[np.bool_] | None) -> NDArray[np.bool_]:
    """Which rows each submission of a block covers: the mask if given, else its non-NaN values."""
    return mask_block if mask_block is not None else ~np.isnan(block)
