"""Where the money went: the figures of a simulation, and its chart of payout against true skill."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

import numpy as np

from crowdquant.demo.participants import KINDS
from crowdquant.simulation.tournament import Simulation

NO_SKILL_KINDS = ("noise", "constant", "copy")
"""The kinds with no skill of their own (the goal: <= 2% of all payouts)."""
KIND_LABELS = {
    "good": "good (logistic, 2-10 features)",
    "weak": "weak (1-3 features)",
    "noise": "noise (uniform 0.47-0.53)",
    "prober": "prober",
    "copy": "near-copies",
    "constant": "constant 0.5",
}
GOALS = {"no_skill_share": 0.02, "spearman": 0.8}


@dataclass(frozen=True)
class KindShare:
    kind: str
    models: int
    entries: int  # model-rounds
    paid_entries: int  # model-rounds with a payout
    paid: int  # satoshis
    share: float  # of all payouts
    mean_skill: float
    sat_per_skill: float  # satoshis per round per 0.01 of true skill (NaN when the kind's skill is <= 0)


@dataclass(frozen=True)
class Figures:
    policy: str
    rounds: int
    total_paid: int
    kinds: list[KindShare]
    no_skill_share: float
    spearman: float
    share_to_no_true_skill: float  # paid to models whose true skill <= 0
    best_good: str
    best_good_paid: int
    best_weak: str
    best_weak_paid: int

    @property
    def best_good_beats_weak(self) -> bool:
        return self.best_good_paid > self.best_weak_paid

    @property
    def goals_met(self) -> bool:
        return (
            self.no_skill_share <= GOALS["no_skill_share"]
            and self.spearman >= GOALS["spearman"]
            and self.best_good_beats_weak
        )


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (ties averaged); NaN when either side is constant."""
    rx, ry = _ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64))
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def figures(sim: Simulation) -> Figures:
    models = sim.models
    rounds = sim.config.rounds
    paid = np.asarray([m.total_paid for m in models], dtype=np.float64)
    skill = np.asarray([m.true_skill for m in models], dtype=np.float64)
    total = float(paid.sum())
    kinds = []
    for kind in KINDS:
        members = [i for i, m in enumerate(models) if m.kind == kind]
        if not members:
            continue
        kind_paid = int(paid[members].sum())
        mean_skill = float(skill[members].mean())
        per_round = kind_paid / len(members) / rounds
        kinds.append(
            KindShare(
                kind,
                len(members),
                len(members) * rounds,
                sum(1 for i in members for a in models[i].paid if a > 0),
                kind_paid,
                kind_paid / total if total else 0.0,
                mean_skill,
                per_round / (mean_skill / 0.01) if mean_skill > 0 else math.nan,
            )
        )
    goods = [m for m in models if m.kind == "good"]
    weaks = [m for m in models if m.kind == "weak"]
    best_good = max(goods, key=lambda m: m.true_skill) if goods else None
    best_weak = max(weaks, key=lambda m: m.total_paid) if weaks else None
    return Figures(
        policy=sim.policy_name if sim.config.policy != "default" else f"default ({sim.policy_name})",
        rounds=rounds,
        total_paid=int(total),
        kinds=kinds,
        no_skill_share=sum(k.share for k in kinds if k.kind in NO_SKILL_KINDS),
        spearman=spearman(skill, paid),
        share_to_no_true_skill=float(paid[skill <= 0].sum() / total) if total else 0.0,
        best_good=best_good.name if best_good else "",
        best_good_paid=best_good.total_paid if best_good else 0,
        best_weak=best_weak.name if best_weak else "",
        best_weak_paid=best_weak.total_paid if best_weak else 0,
    )


COLOURS = {
    "good": "#1b9e77",
    "weak": "#7570b3",
    "noise": "#d95f02",
    "prober": "#e7298a",
    "copy": "#666666",
    "constant": "#a6761d",
}


def chart_svg(sim: Simulation, title: str = "") -> str:
    """A scatter plot of each model's total payout against its true skill, one colour per kind."""
    width, height, left, right, top, bottom = 720, 440, 80, 150, 40, 50
    skill = np.asarray([m.true_skill for m in sim.models], dtype=np.float64)
    paid = np.asarray([m.total_paid for m in sim.models], dtype=np.float64)
    x_lo, x_hi = float(min(skill.min(), 0.0)), float(max(skill.max(), 0.0))
    pad = (x_hi - x_lo) * 0.05 or 0.01
    x_lo, x_hi = x_lo - pad, x_hi + pad
    y_hi = float(paid.max()) * 1.05 or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return top + plot_h - y / y_hi * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">{escape(title or "payout against true skill")}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>',
        f'<line x1="{px(0):.1f}" y1="{top}" x2="{px(0):.1f}" y2="{top + plot_h}" stroke="#bbb" '
        'stroke-dasharray="4 3"/>',
    ]
    for t in np.linspace(x_lo, x_hi, 5):
        out.append(f'<text x="{px(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{t:.3f}</text>')
    for t in np.linspace(0, y_hi, 5):
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t / 1e6:.2f}M</text>')
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 10}" text-anchor="middle">true skill (expected live CORR)</text>'
    )
    out.append(
        f'<text x="16" y="{top + plot_h / 2}" transform="rotate(-90 16 {top + plot_h / 2})" '
        'text-anchor="middle">total payout (sat)</text>'
    )
    for m in sim.models:
        out.append(
            f'<circle cx="{px(m.true_skill):.1f}" cy="{py(m.total_paid):.1f}" r="4" '
            f'fill="{COLOURS.get(m.kind, "black")}" fill-opacity="0.8"><title>{escape(m.name)} ({m.kind}): '
            f"skill {m.true_skill:.4f}, paid {m.total_paid:,} sat</title></circle>"
        )
    for i, kind in enumerate(k for k in KINDS if any(m.kind == k for m in sim.models)):
        y = top + 10 + i * 18
        out.append(
            f'<circle cx="{width - right + 20}" cy="{y}" r="4" fill="{COLOURS[kind]}"/>'
            f'<text x="{width - right + 30}" y="{y + 4}">{kind}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
