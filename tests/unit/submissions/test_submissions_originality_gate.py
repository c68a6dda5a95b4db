"""The originality gate on the demo's cast (small data): every near-copy flagged, honest models pass.

The full-size figures come from ``bench/originality.py``; this keeps the default honest in the suite.
"""

from __future__ import annotations

from crowdquant.demo.originality_gate import measure
from services.submissions.domain.originality import OriginalityRule


def test_default_rule_flags_every_near_copy_and_at_most_5_percent_of_honest_models() -> None:
    rates = measure(OriginalityRule(), seeds=[1, 2], n_participants=24, small=True)
    assert rates.copies == 2 * 4  # two copycats, one self-copy, one bent copy per round
    assert rates.copy_rate == 1.0, rates.missed_copies
    assert rates.honest == 2 * 22
    assert rates.honest_rate <= 0.05, rates.flagged_honest


def test_the_2017_rule_fails_the_same_cast() -> None:
    """Why the default departs from 2017: its KS pass flags honest models, and it misses bent copies."""
    rates = measure(OriginalityRule.of_2017(), seeds=[1], n_participants=24, small=True, same_model=False)
    assert rates.honest_rate > 0.05
    assert "bender" in rates.missed_copies
