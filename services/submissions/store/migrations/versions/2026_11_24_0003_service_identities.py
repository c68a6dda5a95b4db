"""Service identities: a service key names the one service that uses it.

Revision ID: 0003_service_identities
Revises: 0002_rounds
Create Date: 2026-11-24

Keys made before this revision with role 'service' keep an empty service_name: they still
authenticate but match no access rule, so each service must get its own key (SECURITY.md, rotation).
"""

from alembic import op

revision = "0003_service_identities"
down_revision = "0002_rounds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE submissions.api_keys ADD COLUMN service_name text")
    op.execute("""
        ALTER TABLE submissions.api_keys ADD CONSTRAINT api_keys_service_name_check
        CHECK (service_name IS NULL
               OR (role = 'service' AND service_name IN ('submissions', 'scoring', 'leaderboard', 'payouts')))""")


def downgrade() -> None:
    op.execute("ALTER TABLE submissions.api_keys DROP COLUMN service_name")
