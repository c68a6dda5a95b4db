"""The service's own login role ``cq_submissions``: its schema, the DML it needs, nothing else.

The service reads and writes rows, never deletes them.
``alembic_version`` is only readable (the service checks that its schema is current before it
serves). The role itself is made by an administrator beforehand (see
``shared/db_roles.py``); the migration role that runs this owns the schema and its tables.

Revision ID: 0006_login_role
Revises: 0005_key_scopes
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006_login_role"
down_revision = "0005_key_scopes"
branch_labels = None
depends_on = None

ROLE = "cq_submissions"

STATEMENTS = [
    f"""DO $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
            RAISE EXCEPTION 'role {ROLE} does not exist: create the service roles first (README: database roles)';
        END IF;
    END
    $$""",
    f"GRANT USAGE ON SCHEMA submissions TO {ROLE}",
    f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA submissions TO {ROLE}",
    f"REVOKE INSERT, UPDATE, DELETE ON submissions.alembic_version FROM {ROLE}",
    f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA submissions TO {ROLE}",
    # tables a later migration adds (as the migration role) come with the same rights
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA submissions GRANT SELECT, INSERT, UPDATE ON TABLES TO {ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA submissions GRANT USAGE, SELECT ON SEQUENCES TO {ROLE}",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA submissions REVOKE ALL ON SEQUENCES FROM {ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA submissions REVOKE ALL ON TABLES FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA submissions FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA submissions FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA submissions FROM {ROLE}")
