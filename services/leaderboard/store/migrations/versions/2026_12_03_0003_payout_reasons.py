"""Board entries say why a model's payout is 0: the allocation's reason code and its sentence.

Revision ID: 0003_payout_reasons
Revises: 0002_boards
Create Date: 2026-12-03
"""

from alembic import op

revision = "0003_payout_reasons"
down_revision = "0002_boards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE leaderboard.entries ADD COLUMN payout_reason text NOT NULL DEFAULT '', "
        "ADD COLUMN payout_detail text NOT NULL DEFAULT ''"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE leaderboard.entries DROP COLUMN payout_reason, DROP COLUMN payout_detail")
