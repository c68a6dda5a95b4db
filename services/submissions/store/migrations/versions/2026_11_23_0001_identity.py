"""Participants, API keys and request idempotency.

Revision ID: 0001_identity
Revises:
Create Date: 2026-11-23
"""

from alembic import op

from shared.idempotency import IDEMPOTENCY_DDL

revision = "0001_identity"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(IDEMPOTENCY_DDL.format(schema="submissions"))
    op.execute("""
        CREATE TABLE submissions.participants (
            participant_id text PRIMARY KEY,
            display_name   text NOT NULL UNIQUE CHECK (length(display_name) BETWEEN 1 AND 64),
            email          text NOT NULL DEFAULT '',
            created_at     timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("""
        CREATE TABLE submissions.api_keys (
            key_id         text PRIMARY KEY,
            participant_id text REFERENCES submissions.participants(participant_id),
            role           text NOT NULL CHECK (role IN ('participant', 'operator', 'auditor', 'service')),
            scopes         text[] NOT NULL,
            description    text NOT NULL DEFAULT '',
            salt           bytea NOT NULL,
            secret_hash    bytea NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            revoked_at     timestamptz,
            CHECK ((role = 'participant') = (participant_id IS NOT NULL))
        )""")
    op.execute("CREATE INDEX api_keys_participant_idx ON submissions.api_keys (participant_id, key_id)")


def downgrade() -> None:
    op.execute("DROP TABLE submissions.api_keys")
    op.execute("DROP TABLE submissions.participants")
    op.execute("DROP TABLE submissions.idempotency_keys")
