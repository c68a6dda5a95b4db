"""Small numeric kernels shared by the scoring modules."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["dot"]


def dot(a: NDArray[Any], b: NDArray[Any]) -> np.float64:
    """Inner product of two 1-D vectors without going through BLAS.

    OpenBLAS hands level-1 products of a few ten thousand elements to its thread pool; on small
    (2-vCPU) machines waking the pool costs milliseconds, a thousand times the product itself.
    numpy's own einsum loop is vectorised and needs no threads. Returns a numpy scalar so that a
    division by a zero norm gives NaN/inf (under ``np.errstate``) like numpy, not ZeroDivisionError.
    """
    return np.float64(np.einsum("i,i->", a, b))
