"""Allocation lines say why a model got nothing: a reason code and the deciding statistic.

``reason`` (text) now explains every line whose amount is not positive, not only ineligible ones;
``reason_code`` is its machine-readable ``ZeroPayoutReason``; ``reason_value``/``reason_threshold``
the deciding statistic (e.g. |Pearson| and 0.95) and ``reason_subject`` the earlier submission a
non-original model copies.

Revision ID: 0003_zero_payout_reasons
Revises: 0002_ledger_batches
Create Date: 2026-12-03
"""

from alembic import op

revision = "0003_zero_payout_reasons"
down_revision = "0002_ledger_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """ALTER TABLE payouts.allocation_lines
             ADD COLUMN reason_code text NOT NULL DEFAULT '',
             ADD COLUMN reason_value double precision,
             ADD COLUMN reason_threshold double precision,
             ADD COLUMN reason_subject text NOT NULL DEFAULT ''"""
    )


def downgrade() -> None:
    op.execute(
        """ALTER TABLE payouts.allocation_lines
             DROP COLUMN reason_code, DROP COLUMN reason_value, DROP COLUMN reason_threshold,
             DROP COLUMN reason_subject"""
    )
