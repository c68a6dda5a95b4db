"""A resolved round's results as the contract's messages: meta model, every model's scores and contribution.

Pure (numbers in, messages out), so ScoreRound is reproducible: the same inputs give the same
bytes, which is what makes re-running a scoring run safe to compare and to store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as pb
from services.scoring.domain.bootstrap import bootstrap_mean_ci
from services.scoring.domain.eras import era_stats
from services.scoring.domain.meta_model import fit_stacker, stake_weighted_meta_model
from services.scoring.domain.metrics import RoundScores, score_submissions
from services.scoring.domain.results import RoundInputs, ScoredModel, ScoredRound

METRICS = (
    ("logloss", common_pb2.METRIC_LOGLOSS),
    ("auc", common_pb2.METRIC_AUC),
    ("corr", common_pb2.METRIC_CORR),
    ("mmc", common_pb2.METRIC_MMC),
)


@dataclass(frozen=True)
class RoundResults:
    scores: list[pb.ModelScores]
    meta: pb.MetaModel


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else float("nan")


def metric_scores(
    name: str, metric: int, overall: np.ndarray, by_era: np.ndarray, eras: np.ndarray, inputs: RoundInputs
) -> list[pb.MetricScore | None]:
    """One MetricScore per model (None where the metric doesn't apply)."""
    if np.all(np.isnan(overall)):
        return [None] * len(overall)
    lower_better = name == "logloss"
    baseline = {"logloss": inputs.logloss_benchmark, "auc": 0.5}.get(name, 0.0)
    stats = era_stats(by_era, baseline=baseline, higher_is_better=not lower_better)
    ci = bootstrap_mean_ci(by_era, resamples=inputs.resamples, confidence=inputs.confidence)
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(by_era)
        better = (by_era < baseline) if lower_better else (by_era > baseline)
        consistency = np.where(
            valid.any(axis=1), (better & valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1), np.nan
        )
    out: list[pb.MetricScore | None] = []
    for i in range(len(overall)):
        out.append(
            pb.MetricScore(
                metric=metric,
                overall=_finite(overall[i]),
                mean=_finite(stats.mean[i]),
                std=_finite(stats.std[i]),
                sharpe=_finite(stats.sharpe[i]),
                max_drawdown=_finite(stats.max_drawdown[i]),
                consistency=_finite(consistency[i]),
                ci_low=_finite(ci.lower[i]),
                ci_high=_finite(ci.upper[i]),
                eras=[pb.EraValue(era=f"era{int(e)}", value=_finite(v)) for e, v in zip(eras, by_era[i], strict=True)],
            )
        )
    return out


def _all_metrics(scores: RoundScores, inputs: RoundInputs) -> dict[str, list[pb.MetricScore | None]]:
    return {
        name: metric_scores(
            name, metric, getattr(scores.overall, name), getattr(scores.by_era, name), scores.eras, inputs
        )
        for name, metric in METRICS
    }


def _meta_metrics(binary: bool, probabilities: bool) -> set[str]:
    """The meta model's own metrics: logloss needs probabilities (learned stacker); AUC only ranks."""
    if not binary:
        return {"corr"}
    return {"corr", "auc", "logloss"} if probabilities else {"corr", "auc"}


def compute(inputs: RoundInputs, progress: Callable[[str, float], None] = lambda _p, _f: None) -> RoundResults:
    """Meta model by the tournament's policy, then every metric of every model against it."""
    m = len(inputs.model_ids)
    stakes = np.asarray([inputs.stakes.get(mid, 0) for mid in inputs.model_ids], dtype=np.int64)
    loo = np.zeros(m)
    progress("meta model", 0.3)
    if inputs.policy == common_pb2.META_MODEL_POLICY_LEARNED_STACKER and m >= 1 and len(np.unique(inputs.eras)) >= 2:
        fit = fit_stacker(inputs.values, np.clip(inputs.targets, 0, 1), inputs.eras, eps=inputs.eps)
        meta, weights, loo = fit.meta_model, fit.weights, fit.loo_gain
        meta_probabilities = meta
    else:
        meta = stake_weighted_meta_model(inputs.values, stakes if stakes.sum() > 0 else None)
        total = stakes.sum()
        weights = stakes / total if total > 0 else np.full(m, 1.0 / max(m, 1))
        meta_probabilities = None
    progress("metrics", 0.5)
    scores = score_submissions(
        inputs.values,
        inputs.targets,
        meta,
        inputs.eras,
        eps=inputs.eps,
        metrics={"corr", "mmc", "logloss", "auc"} if inputs.binary else {"corr", "mmc"},
    )
    progress("bootstrap", 0.8)
    per_metric = _all_metrics(scores, inputs)
    ref = common_pb2.RoundRef(tournament_id=inputs.key.tournament_id, round_number=inputs.key.number)
    results = []
    for i, model_id in enumerate(inputs.model_ids):
        ms = pb.ModelScores(
            round=ref,
            model=common_pb2.ModelRef(
                model_id=model_id, participant_id=inputs.participants[i], display_name=inputs.names.get(model_id, "")
            ),
            version=inputs.versions[i],
            meta_weight=float(weights[i]),
            leave_one_out_gain=_finite(loo[i]),
            stake_satoshis=int(stakes[i]),
        )
        for name, _ in METRICS:
            value = per_metric[name][i]
            if value is not None:
                getattr(ms, name).CopyFrom(value)
        results.append(ms)
    meta_message = pb.MetaModel(
        round=ref,
        policy=inputs.policy,
        weights=[
            pb.MetaModelWeight(
                model=r.model,
                weight=r.meta_weight,
                stake_satoshis=r.stake_satoshis,
                leave_one_out_gain=r.leave_one_out_gain,
            )
            for r in results
        ],
    )
    own_values = meta_probabilities if meta_probabilities is not None else meta
    own = score_submissions(
        np.asarray(own_values, dtype=np.float64)[None, :],
        inputs.targets,
        meta,
        inputs.eras,
        eps=inputs.eps,
        metrics=_meta_metrics(inputs.binary, meta_probabilities is not None),
    )
    for name, per_model in _all_metrics(own, inputs).items():
        if name != "mmc" and per_model[0] is not None:
            getattr(meta_message, name).CopyFrom(per_model[0])
    return RoundResults(results, meta_message)


def _sort_value(score: pb.ModelScores, name: str) -> float | None:
    if not score.HasField(name):
        return None
    value = getattr(score, name).mean
    return value if math.isfinite(value) else None


def encode(inputs: RoundInputs) -> ScoredRound:
    """``compute`` as the records a scoring run stores: canonical bytes, so a re-run compares equal."""
    results = compute(inputs)
    return ScoredRound(
        [
            ScoredModel(
                s.model.model_id,
                s.model.participant_id,
                {name: _sort_value(s, name) for name, _ in METRICS},
                s.SerializeToString(deterministic=True),
            )
            for s in results.scores
        ],
        results.meta.SerializeToString(deterministic=True),
    )
