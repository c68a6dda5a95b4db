"""Simulated data scientists of the demo: each downloads the round through the client, trains a
small numpy model on the training rows and uploads its predictions.

Skills vary on purpose: logistic models on different feature subsets, noise, the constant 0.5
benchmark, near-copies of another participant (the originality check flags them) and a prober
who re-uploads perturbations to climb the public board (the Ladder keeps it from overfitting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.submissions.domain.dataset import Dataset, Split

KINDS = ("good", "weak", "noise", "constant", "copy", "prober")


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str
    features: tuple[int, ...]
    ridge: float
    seed: int


def profiles(n: int, n_features: int = 21, seed: int = 0) -> list[Profile]:
    """A cast of ``n`` participants with a fixed mix of skills (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    cast: list[Profile] = [
        Profile("benchmark-half", "constant", (), 0.0, 0),
        Profile("probe-pete", "prober", tuple(range(n_features)), 1.0, 1),
    ]
    copies = 2 if n >= 10 else 1
    for i in range(copies):
        cast.append(Profile(f"copycat-{i + 1}", "copy", (), 0.0, 100 + i))
    names = [
        "ada",
        "bo",
        "cy",
        "di",
        "ed",
        "flo",
        "gus",
        "hal",
        "ivy",
        "jo",
        "kai",
        "lu",
        "max",
        "nia",
        "oz",
        "pam",
        "quin",
        "rex",
        "sue",
        "ty",
        "uma",
        "vic",
        "wes",
        "xia",
        "yan",
        "zed",
    ]
    i = 0
    while len(cast) < n:
        base = names[i % len(names)] + ("" if i < len(names) else str(i // len(names)))
        roll = i % 10
        if roll < 5:
            k = int(rng.integers(2, max(3, n_features // 2) + 1))
            cast.append(
                Profile(
                    f"{base}-linear",
                    "good",
                    tuple(sorted(rng.choice(n_features, k, replace=False))),
                    float(rng.choice([0.1, 1.0, 10.0, 100.0])),
                    1000 + i,
                )
            )
        elif roll < 8:
            k = int(rng.integers(1, 4))
            cast.append(
                Profile(
                    f"{base}-simple", "weak", tuple(sorted(rng.choice(n_features, k, replace=False))), 1.0, 1000 + i
                )
            )
        else:
            cast.append(Profile(f"{base}-random", "noise", (), 0.0, 1000 + i))
        i += 1
    return cast[:n]


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float, steps: int = 8) -> np.ndarray:
    """A few Newton steps of L2-regularised logistic regression (with intercept)."""
    design = np.c_[x, np.ones(len(x))]
    w = np.zeros(design.shape[1])
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-design @ w))
        grad = design.T @ (y - p) - penalty @ w
        hess = (design * (p * (1 - p))[:, None]).T @ design + penalty
        w += np.linalg.solve(hess, grad)
    return w


def predict(profile: Profile, data: Dataset, round_number: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and predictions of the round's tournament rows for one participant."""
    train = data.split == Split.TRAINING
    tour = ~train
    ids = data.ids[tour]
    rng = np.random.default_rng(profile.seed * 1000 + round_number)
    if profile.kind == "constant":
        return ids, np.full(len(ids), 0.5)
    if profile.kind == "noise":
        return ids, rng.uniform(0.47, 0.53, len(ids))
    cols = sorted({c % data.n_features for c in profile.features}) or list(range(data.n_features))
    x = data.features[:, cols].astype(np.float64)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
    z = (x - mean) / std
    w = fit_logistic(z[train], data.targets[train].astype(np.float64), profile.ridge)
    logits = np.c_[z[tour], np.ones(tour.sum())] @ w
    # each participant's own quirks (feature engineering, seeds): models differ beyond their features
    logits += rng.normal(0.0, 0.5 * logits.std() + 1e-9, len(logits))
    p = 1.0 / (1.0 + np.exp(-logits))
    return ids, np.clip(p, 0.001, 0.999)


def perturbations(values: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """The prober's variants: the same model plus small random noise, one per re-upload."""
    rng = np.random.default_rng(seed)
    return [np.clip(values + rng.normal(0, 0.004, len(values)), 0.001, 0.999) for _ in range(count)]


def near_copy(values: np.ndarray, seed: int) -> np.ndarray:
    """Someone else's predictions with a whisper of noise: |Pearson| stays far above 0.95."""
    rng = np.random.default_rng(seed)
    return np.clip(values + rng.normal(0, 1e-4, len(values)), 0.001, 0.999)
