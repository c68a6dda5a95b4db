"""The tournament simulator: the default payout rules pay for skill, the 2016 pool pays luck too.

A regression guard for scoring and allocation together: if a change starts paying models with no
skill of their own (noise, the constant, copies), the default's figures leave these tolerances. The
tolerances come from seeded runs of this cast (20 participants, 8 small rounds, seed 0): default
no-skill share 0.0%, Spearman 0.918, best good model 3,665,041 sat vs best weak 2,529,137 sat;
2016 pool no-skill share 4.8%.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from crowdquant.cli.main import app
from crowdquant.simulation import SimulationConfig, figures, simulate
from crowdquant.simulation.figures import chart_svg, spearman
from shared.errors import InvalidArgument

CONFIG = SimulationConfig(participants=20, rounds=8, seed=0, size="small", skill_rounds=2)


@pytest.fixture(scope="module")
def sims():  # type: ignore[no-untyped-def]
    return simulate(CONFIG, policies=("default", "pool"))


def test_default_rules_pay_for_skill(sims) -> None:  # type: ignore[no-untyped-def]
    fig = figures(sims["default"])
    assert fig.no_skill_share <= 0.01
    assert fig.share_to_no_true_skill <= 0.01
    assert fig.spearman >= 0.85
    assert fig.best_good_beats_weak
    assert 0 < fig.total_paid <= CONFIG.rounds * CONFIG.pool_satoshis


def test_the_2016_pool_pays_noise(sims) -> None:  # type: ignore[no-untyped-def]
    fig = figures(sims["pool"])
    assert fig.no_skill_share >= 0.03  # what the default rules exist to stop
    assert fig.total_paid == CONFIG.rounds * CONFIG.pool_satoshis  # the 2016 pool always pays out in full
    noise = next(k for k in fig.kinds if k.kind == "noise")
    assert noise.paid_entries > 0


def test_every_unpaid_positive_contribution_is_explained(sims) -> None:  # type: ignore[no-untyped-def]
    unexplained, not_significant = 0, 0
    for m in sims["default"].models:
        for corr, (low, _high), paid, reason in zip(m.corr, m.corr_interval, m.paid, m.reasons, strict=True):
            if reason == "NOT_SIGNIFICANT":
                not_significant += 1
                assert corr > 0 >= low and paid == 0
            elif paid == 0 and corr > 0 and reason == "":
                unexplained += 1
            if paid > 0:
                assert low > 0 and reason == ""
    assert not_significant > 0 and unexplained == 0


def test_noise_and_copies_have_no_true_skill_and_models_do(sims) -> None:  # type: ignore[no-untyped-def]
    models = sims["default"].models
    good = [m.true_skill for m in models if m.kind == "good"]
    noise = [m.expected_corr for m in models if m.kind == "noise"]
    assert min(good) > 0.05 and max(abs(v) for v in noise) < 0.02
    assert all(m.true_skill == 0 for m in models if m.kind in ("copy", "constant"))
    assert all(math.isfinite(m.expected_corr) for m in models if m.kind == "copy")


def test_spearman_averages_ties() -> None:
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 5.0])) == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(spearman(np.array([1.0, 2.0]), np.array([3.0, 3.0])))


def test_the_chart_is_an_svg_with_one_point_per_model(sims) -> None:  # type: ignore[no-untyped-def]
    root = ET.fromstring(chart_svg(sims["default"], "t <&> t"))
    circles = root.findall("{http://www.w3.org/2000/svg}circle")
    kinds = {m.kind for m in sims["default"].models}
    assert len(circles) == CONFIG.participants + len(kinds)  # points + legend


def test_bad_options_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument, match="size"):
        SimulationConfig(size="huge").validate()
    with pytest.raises(InvalidArgument, match="policy"):
        SimulationConfig(policy="lottery").validate()
    result = CliRunner().invoke(app, ["simulate", "--policy", "lottery"])
    assert result.exit_code == 2 and "policy" in result.output


def test_the_cli_prints_the_table_and_writes_the_chart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    chart = tmp_path / "chart.svg"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--size",
            "small",
            "--participants",
            "8",
            "--rounds",
            "2",
            "--skill-rounds",
            "1",
            "--chart",
            str(chart),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "share of all payouts" in result.output and "Spearman" in result.output
    assert chart.read_text().startswith("<svg")
