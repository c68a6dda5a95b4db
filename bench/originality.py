"""The originality gate on the demo's cast at the 2016 size: near-copies flagged, honest models flagged.

Usage: python bench/originality.py [--seeds 1,2] [--participants 50] [--small]

For each seed one round is generated and every profile of the demo's cast uploads in the demo's
order (``crowdquant/demo/originality_gate.py`` says who counts as a near-copy and who as honest).
Goal (issue 14): with the default rule, 100% of near-copies flagged and at most 5% of honest
independent models flagged. The 2017 rule and the demo's former narrowing are shown beside it.
"""

from __future__ import annotations

import argparse
import time

from crowdquant.demo.originality_gate import measure
from services.submissions.domain.originality import OriginalityRule

RULES = (
    ("default (Pearson or Spearman > 0.95, no KS)", OriginalityRule(), True),
    ("Pearson > 0.95 alone", OriginalityRule(max_abs_rank_correlation=1.0), True),
    ("2017 (Pearson, KS < 0.005, KS <= 0.03; others only)", OriginalityRule.of_2017(), False),
    (
        "2017 with KS <= 0.002 (the demo's former narrowing)",
        OriginalityRule(similar_ks_statistic=0.002, max_abs_rank_correlation=1.0, ks=True),
        False,
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2", help="more seeds for a wider measurement, e.g. 1,2,3,4,5")
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--small", action="store_true", help="the demo's --small data instead of the 2016 size")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"{len(seeds)} rounds (seeds {args.seeds}), {args.participants} participants, "
        f"{'small' if args.small else '2016'} size"
    )
    ok = True
    for name, rule, same_model in RULES:
        start = time.perf_counter()
        rates = measure(rule, seeds, args.participants, small=args.small, same_model=same_model)
        print(
            f"{name}: near-copies flagged {rates.copies_flagged}/{rates.copies} ({rates.copy_rate:.0%}), "
            f"honest flagged {rates.honest_flagged}/{rates.honest} ({rates.honest_rate:.1%}) "
            f"[{time.perf_counter() - start:.0f} s]"
        )
        if rule == OriginalityRule():
            ok = rates.copy_rate == 1.0 and rates.honest_rate <= 0.05
    print("goal (default: 100% of near-copies, <= 5% of honest models):", "met" if ok else "NOT met")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
