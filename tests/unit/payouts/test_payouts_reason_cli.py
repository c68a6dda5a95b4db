"""The operator CLI's allocation table shows, beside every 0 (or burn), the reason code and sentence."""

from __future__ import annotations

from rich.console import Console

from crowdquant.cli.operator import allocation_table, zero_payout_text
from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb


def test_allocation_table_shows_why_a_model_got_nothing() -> None:
    copied = common_pb2.PayoutReason(
        code=common_pb2.ZERO_PAYOUT_REASON_NOT_ORIGINAL,
        value=0.9999,
        threshold=0.95,
        detail="not original: |Pearson| 0.9999 with earlier submission m_a v1 (> 0.95)",
        other_submission="m_a v1",
    )
    allocation = po_pb.Allocation(
        round=common_pb2.RoundRef(tournament_id="t", round_number=3),
        total_satoshis=900,
        lines=[
            po_pb.AllocationLine(
                model=common_pb2.ModelRef(model_id="m_a", display_name="alpha"),
                amount_satoshis=900,
                contribution=0.02,
                eligible=True,
            ),
            po_pb.AllocationLine(
                model=common_pb2.ModelRef(model_id="m_b", display_name="beta"),
                amount_satoshis=0,
                contribution=0.02,
                zero_payout=copied,
            ),
        ],
    )
    console = Console(record=True, width=200)
    console.print(allocation_table(allocation))
    text = console.export_text()
    alpha = next(row for row in text.splitlines() if "alpha" in row)
    beta = next(row for row in text.splitlines() if "beta" in row)
    assert "900" in alpha and "NOT_ORIGINAL" not in alpha
    assert "NOT_ORIGINAL: not original: |Pearson| 0.9999 with earlier submission m_a v1" in beta
    assert zero_payout_text(common_pb2.PayoutReason(code=common_pb2.ZERO_PAYOUT_REASON_NOT_STAKED)) == "NOT_STAKED"
