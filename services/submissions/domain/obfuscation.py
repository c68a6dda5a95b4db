"""Keyed obfuscation of the released features.

Why: participants must be able to model the data without learning what it is. Each published
feature is ``Phi(scale_j * z_j + offset_j)`` where ``z = standardise(R @ standardise(raw))``:
``R`` is a random orthogonal rotation (QR of a Gaussian matrix, signs fixed so it is uniformly
distributed) and ``scale``/``offset`` are per-feature, all derived from a secret key; ``Phi`` (the
normal CDF) squashes the result into [0, 1] like Numerai's released features. The standardising
statistics come from the training rows, so every split of a round gets the same transform.

What it protects:
- the identity and the values of the raw features: every published column mixes all raw columns
  with secret weights, then rescales and squashes them;
- direct joins to public data: a published value can't be matched to a price, ratio or date
  without the key, and two rounds with different keys don't line up column by column.

What it does NOT protect (don't rely on it for more):
- it is a bijection; anyone holding the key (and the fitted statistics) recovers the raw features
  exactly (``invert``), so the key is a secret of the platform like a signing key;
- the rotation preserves all linear information: a linear model on ``Phi^-1`` of the published
  features does exactly as well as on the raw ones, and monotone/tree models nearly so. That is
  the point (models still learn), but it also means the signal itself is not hidden;
- with ``n_features + 1`` or more rows whose raw values an attacker knows, the affine map behind
  ``Phi^-1`` is solved by least squares and every other row is de-obfuscated; leaking a few raw
  rows is leaking the key;
- row order, row counts, eras and the marginal ranks within a feature are not hidden.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from crowdquant.formats.dataset import Dataset
from shared.errors import InvalidArgument

MIN_KEY_BYTES = 16
_DOMAIN = b"crowdquant.features.obfuscation.v1\x00"


def key_fingerprint(key: bytes) -> str:
    """16 hex of a hash of the key: records which key obfuscated a round without revealing it."""
    return hashlib.sha256(b"fingerprint\x00" + _DOMAIN + key).hexdigest()[:16]


def _secret_parameters(key: bytes, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation, scale and offset, a deterministic function of the key and the feature count."""
    if len(key) < MIN_KEY_BYTES:
        raise InvalidArgument(f"obfuscation key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    digest = hashlib.sha256(_DOMAIN + n_features.to_bytes(4, "little") + key).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    q, r = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    rotation = q * np.sign(np.diag(r))  # sign fix: Haar-distributed, not biased by the QR convention
    scale = rng.uniform(0.6, 1.4, n_features)
    offset = rng.uniform(-0.4, 0.4, n_features)
    return rotation, scale, offset


def _safe_spread(values: np.ndarray) -> np.ndarray:
    spread = values.std(axis=0)
    return np.where(spread > 0, spread, 1.0)


@dataclass(frozen=True, eq=False)
class FeatureObfuscation:
    """A fitted keyed transform; holds secrets, so it lives only in the platform's process."""

    key_id: str
    rotation: np.ndarray  # (f, f) orthogonal
    scale: np.ndarray  # (f,)
    offset: np.ndarray  # (f,)
    center: np.ndarray  # (f,) mean of the raw reference rows
    spread: np.ndarray  # (f,) std of the raw reference rows
    rotated_spread: np.ndarray  # (f,) std of the rotated standardised reference rows

    @classmethod
    def fit(cls, key: bytes, reference: np.ndarray) -> FeatureObfuscation:
        """Derive the secret parameters from ``key`` and standardise on ``reference`` (training rows)."""
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[0] < 2:
            raise InvalidArgument(f"obfuscation reference must be a 2-D array of >= 2 rows, got {reference.shape}")
        rotation, scale, offset = _secret_parameters(key, reference.shape[1])
        center = reference.mean(axis=0)
        spread = _safe_spread(reference)
        rotated = ((reference - center) / spread) @ rotation.T
        return cls(key_fingerprint(key), rotation, scale, offset, center, spread, _safe_spread(rotated))

    def _check_width(self, values: np.ndarray) -> None:
        if values.ndim != 2 or values.shape[1] != len(self.center):
            raise InvalidArgument(f"expected an (n, {len(self.center)}) feature array, got {values.shape}")

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Published features in [0, 1], float32."""
        raw = np.asarray(raw, dtype=np.float64)
        self._check_width(raw)
        z = (((raw - self.center) / self.spread) @ self.rotation.T) / self.rotated_spread
        return ndtr(z * self.scale + self.offset).astype(np.float32)

    def invert(self, published: np.ndarray) -> np.ndarray:
        """Raw features back from published ones (exact up to float32 rounding): needs the key."""
        published = np.asarray(published, dtype=np.float64)
        self._check_width(published)
        tiny = np.finfo(np.float32).tiny
        u = ndtri(np.clip(published, tiny, 1.0 - np.finfo(np.float32).epsneg))
        z = (u - self.offset) / self.scale * self.rotated_spread
        return (z @ self.rotation) * self.spread + self.center


def obfuscate_dataset(dataset: Dataset, key: bytes) -> tuple[Dataset, FeatureObfuscation]:
    """The dataset with published features and the fitted transform.

    Standardised on the training rows (all rows when a round comes without training rows).
    """
    training = dataset.training()
    reference = training.features if training.n_rows >= 2 else dataset.features
    transform = FeatureObfuscation.fit(key, reference)
    return dataset.with_features(transform.apply(dataset.features)), transform
