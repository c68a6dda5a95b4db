"""The service's own login role ``cq_payouts``: the ledger group's grants, its wallet schema, nothing else.

``cq_payouts`` belongs to ``crowdquant_app`` (made so by whoever creates the roles, see
``shared/db_roles.py``) and inherits exactly its grants: append to the ledger, never update or delete
an entry; read, insert and update the payouts tables. On top of that it may only read
``alembic_version`` (the service checks that its schema is current before it serves) and keep
bitcoinlib's wallet tables in schema ``payouts_wallet``, which bitcoinlib creates itself on first use.

Revision ID: 0004_login_role
Revises: 0003_zero_payout_reasons
Create Date: 2026-12-03
"""

from alembic import op

revision = "0004_login_role"
down_revision = "0003_zero_payout_reasons"
branch_labels = None
depends_on = None

ROLE = "cq_payouts"

STATEMENTS = [
    f"""DO $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
            RAISE EXCEPTION 'role {ROLE} does not exist: create the service roles first (README: database roles)';
        END IF;
    END
    $$""",
    f"GRANT SELECT ON payouts.alembic_version TO {ROLE}",
    f"GRANT USAGE, CREATE ON SCHEMA payouts_wallet TO {ROLE}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA payouts_wallet TO {ROLE}",
    f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA payouts_wallet TO {ROLE}",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA payouts_wallet FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA payouts_wallet FROM {ROLE}")
    op.execute(f"REVOKE ALL ON SCHEMA payouts_wallet FROM {ROLE}")
    op.execute(f"REVOKE ALL ON payouts.alembic_version FROM {ROLE}")
