"""Benchmark of crowdquant's CORR + MMC against numerai-tools and against a float32 argsort bound.

Usage: python bench/scoring.py [--models 200] [--rows 36072] [--big] [--repeats 3]

One run, three data sets (n_models submissions x n_rows float32, binary targets as in the 2016 data,
the stake-weighted meta model of the submissions themselves; the same predictions unrounded, rounded to
3 and rounded to 5 decimals):

* numerai-tools: ``numerai_corr`` + ``correlation_contribution`` on the DataFrame of all submissions;
* crowdquant: ``corr_mmc`` on the float32 matrix;
* bound: one ``np.argsort`` of each float32 submission, the least any exact rank-based score costs.

Goals (issue 20): crowdquant >= 10x faster than numerai-tools and <= 2x the argsort bound, on
predictions at full float32 precision (almost no ties) and on the same predictions rounded to 3 and to
5 decimals, as participants round them (ties everywhere). On a shared machine timings drift by 2x
within a minute, so the three are timed interleaved on the same slices of ``--slice`` submissions
(column blocks of the one DataFrame) and summed; each side runs ``--repeats`` times per slice and
counts the median. A single crowdquant call over all submissions is timed too.
With ``--big`` it first scores 10,000 x n_rows in this same process,
printing time, peak memory (ru_maxrss, goal <= 4 GB) and the times for 2,500 / 5,000 / 10,000
submissions to show the cost is linear.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable

import numpy as np

from services.scoring.domain.meta_model import stake_weighted_meta_model
from services.scoring.domain.metrics import corr_mmc

SEED = 2016


def make_data(n_models: int, n_rows: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Submissions with a weak shared signal, generated block-wise straight into float32 storage."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n_rows).astype(np.float32)
    targets = (rng.random(n_rows) < 1 / (1 + np.exp(-0.1 * signal))).astype(np.float64)
    predictions = np.empty((n_models, n_rows), dtype=np.float32)
    for start in range(0, n_models, 256):
        block = predictions[start : start + 256]
        rng.standard_normal(out=block, dtype=np.float32)
        block += np.float32(0.3) * signal
        np.negative(block, out=block)
        np.exp(block, out=block)
        block += np.float32(1.0)
        np.reciprocal(block, out=block)
    return predictions, targets


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB


def timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def argsort_bound(predictions: np.ndarray) -> None:
    for row in predictions:
        np.argsort(row)


def run_big(n_rows: int) -> None:
    print(f"== big: 10,000 x {n_rows:,} float32 in one process ==")
    predictions, targets = make_data(10_000, n_rows, seed=SEED + 1)
    print(f"data: {predictions.nbytes / 1e9:.2f} GB float32, peak so far {peak_memory_gb():.2f} GB")
    meta_seconds, meta = timed(lambda: stake_weighted_meta_model(predictions))
    print(f"stake-weighted meta model of 10,000: {meta_seconds:.1f} s")
    times = {}
    for count in (2_500, 5_000, 10_000):
        seconds, _ = timed(lambda count=count: corr_mmc(predictions[:count], targets, meta))
        times[count] = seconds
        per_submission = seconds / count * 1e3
        print(f"CORR+MMC {count:>6,} submissions: {seconds:6.1f} s = {per_submission:.2f} ms/submission")
    print(
        f"linearity: t(5,000)/t(2,500) = {times[5_000] / times[2_500]:.2f}, "
        f"t(10,000)/t(5,000) = {times[10_000] / times[5_000]:.2f} (2.00 = linear)"
    )
    print(f"peak memory (ru_maxrss): {peak_memory_gb():.2f} GB (goal <= 4 GB)")
    print()


ROUNDINGS: tuple[int | None, ...] = (None, 3, 5)
"""The comparison's data sets: full float32 precision (almost no ties), and the same predictions
rounded to 3 and to 5 decimals, as participants round them (3 decimals: nearly every value tied)."""


def rounded(predictions: np.ndarray, decimals: int | None) -> np.ndarray:
    return predictions if decimals is None else np.round(predictions, decimals).astype(np.float32)


def run_comparison(n_models: int, n_rows: int, repeats: int, slice_size: int) -> None:
    """Time the three on the same data, slice by slice, so that the noise of a shared machine hits
    all three alike; every slice is a block of columns of the one DataFrame. Each side runs
    ``repeats`` times per slice, interleaved, and a slice counts its median."""
    import pandas as pd
    from numerai_tools.scoring import correlation_contribution, numerai_corr

    base, targets = make_data(n_models, n_rows)
    ids = pd.Index([f"t{k:06d}" for k in range(n_rows)], name="id")
    target_series = pd.Series(targets, index=ids, name="target")
    print(f"(slices of {slice_size} submissions, interleaved; every side: median of {repeats} runs per slice)")
    for decimals in ROUNDINGS:
        predictions = rounded(base, decimals)
        label = "full float32 precision" if decimals is None else f"rounded to {decimals} decimals"
        tied = float(np.mean(np.sort(predictions[:8], axis=1)[:, 1:] == np.sort(predictions[:8], axis=1)[:, :-1]))
        print(
            f"\n== {n_models:,} submissions x {n_rows:,} rows, float32, {label} "
            f"({tied:.1%} of sorted neighbours tied) =="
        )
        meta = stake_weighted_meta_model(predictions)
        frame = pd.DataFrame(predictions.T, index=ids, columns=[f"model_{i}" for i in range(n_models)])
        meta_series = pd.Series(meta, index=ids, name="meta_model")

        def theirs(columns: slice, frame: pd.DataFrame = frame, meta_series: pd.Series = meta_series) -> tuple:
            part = frame.iloc[:, columns]
            corr = numerai_corr(part, target_series)
            mmc = correlation_contribution(part, meta_series, target_series)
            return corr.to_numpy(), mmc.to_numpy()

        t_theirs = t_ours = t_bound = 0.0
        corr_diff = mmc_diff = 0.0
        for start in range(0, n_models, slice_size):
            columns = slice(start, min(start + slice_size, n_models))
            block = predictions[columns]
            runs: dict[str, list[float]] = {"theirs": [], "ours": [], "bound": []}
            for _ in range(repeats):
                seconds, (their_corr, their_mmc) = timed(lambda columns=columns: theirs(columns))
                runs["theirs"].append(seconds)
                seconds, (corr, mmc) = timed(lambda block=block, meta=meta: corr_mmc(block, targets, meta))
                runs["ours"].append(seconds)
                runs["bound"].append(timed(lambda block=block: argsort_bound(block))[0])
            t_theirs += float(np.median(runs["theirs"]))
            t_ours += float(np.median(runs["ours"]))
            t_bound += float(np.median(runs["bound"]))
            corr_diff = max(corr_diff, float(np.max(np.abs(corr - their_corr))))
            mmc_diff = max(mmc_diff, float(np.max(np.abs(mmc - their_mmc))))
        t_single, _ = timed(lambda predictions=predictions, meta=meta: corr_mmc(predictions, targets, meta))

        def line(label: str, seconds: float) -> str:
            return f"{label:<58}{seconds:8.2f} s = {seconds / n_models * 1e3:6.2f} ms/submission"

        speed_up, to_bound = t_theirs / t_ours, t_ours / t_bound
        print(line("numerai-tools numerai_corr + correlation_contribution:", t_theirs))
        print(line("crowdquant corr_mmc:", t_ours))
        print(line("bound: one float32 np.argsort per submission:", t_bound))
        print(line("crowdquant corr_mmc, all submissions in one call:", t_single))
        print(f"speed-up over numerai-tools: {speed_up:6.1f}x (goal >= 10x: {'met' if speed_up >= 10 else 'MISSED'})")
        print(
            f"cost relative to the argsort bound: {to_bound:5.2f}x (goal <= 2x: {'met' if to_bound <= 2 else 'MISSED'})"
        )
        print(f"max |ours - numerai-tools|: CORR {corr_diff:.1e}, MMC {mmc_diff:.1e} (goal <= 1e-9)")
        print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"\npeak memory (ru_maxrss): {peak_memory_gb():.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rows", type=int, default=36072)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slice", type=int, default=100, help="submissions per interleaved timing slice")
    parser.add_argument("--big", action="store_true", help="also score 10,000 submissions (about 4 minutes)")
    args = parser.parse_args()
    print(
        f"numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    if args.big:  # first, so that its peak memory is not the comparison's DataFrames
        run_big(args.rows)
    run_comparison(args.models, args.rows, args.repeats, args.slice)


if __name__ == "__main__":
    main()
