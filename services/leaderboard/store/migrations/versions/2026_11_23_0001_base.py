"""Base of the leaderboard schema: request idempotency.

Revision ID: 0001_base
Revises:
Create Date: 2026-11-23
"""

from alembic import op

from shared.idempotency import IDEMPOTENCY_DDL

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(IDEMPOTENCY_DDL.format(schema="leaderboard"))


def downgrade() -> None:
    op.execute("DROP TABLE leaderboard.idempotency_keys")
