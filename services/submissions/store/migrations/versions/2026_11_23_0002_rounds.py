"""Tournaments, datasets, rounds and their data, models, submissions and receipt keys.

Revision ID: 0002_rounds
Revises: 0001_identity
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002_rounds"
down_revision = "0001_identity"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE submissions.tournaments (
        tournament_id text PRIMARY KEY CHECK (tournament_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        display_name  text NOT NULL,
        target_kind   text NOT NULL CHECK (target_kind IN ('binary', 'graded')),
        network       text NOT NULL,
        rules         bytea NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now()
    )""",
    """
    CREATE TABLE submissions.datasets (
        dataset_id      text PRIMARY KEY,
        tournament_id   text NOT NULL REFERENCES submissions.tournaments,
        description     text NOT NULL DEFAULT '',
        feature_names   text[] NOT NULL,
        training_rows   integer NOT NULL,
        validation_rows integer NOT NULL,
        live_rows       integer NOT NULL,
        content_sha256  text NOT NULL,
        payload         bytea NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now()
    )""",
    """
    CREATE TABLE submissions.rounds (
        tournament_id        text NOT NULL REFERENCES submissions.tournaments,
        round_number         integer NOT NULL CHECK (round_number > 0),
        state                text NOT NULL CHECK (state IN ('open', 'closed', 'resolved', 'scored', 'paid')),
        opened_at            timestamptz NOT NULL DEFAULT now(),
        scheduled_close_at   timestamptz,
        closed_at            timestamptz,
        resolved_at          timestamptz,
        scored_at            timestamptz,
        paid_at              timestamptz,
        training_rows        integer NOT NULL,
        validation_rows      integer NOT NULL,
        live_rows            integer NOT NULL,
        feature_count        integer NOT NULL,
        era_count            integer NOT NULL,
        dataset_id           text REFERENCES submissions.datasets,
        generated_spec       bytea,
        commitment_sha256    text NOT NULL,
        committed_splits     integer[] NOT NULL,
        salt                 bytea NOT NULL,
        revealed             boolean NOT NULL DEFAULT false,
        scoring_run_id       text,
        batch_ids            text[],
        PRIMARY KEY (tournament_id, round_number)
    )""",
    # The row universe of a round as packed columns: ids/eras '\\n'-joined, splits int8,
    # features float32 row-major (released, obfuscated), targets float32 (hidden ones too).
    """
    CREATE TABLE submissions.round_data (
        tournament_id text NOT NULL,
        round_number  integer NOT NULL,
        feature_names text[] NOT NULL,
        ids           bytea NOT NULL,
        eras          bytea NOT NULL,
        splits        bytea NOT NULL,
        features      bytea NOT NULL,
        targets       bytea NOT NULL,
        PRIMARY KEY (tournament_id, round_number),
        FOREIGN KEY (tournament_id, round_number) REFERENCES submissions.rounds
    )""",
    """
    CREATE TABLE submissions.models (
        model_id       text PRIMARY KEY,
        tournament_id  text NOT NULL REFERENCES submissions.tournaments,
        participant_id text NOT NULL REFERENCES submissions.participants,
        display_name   text NOT NULL,
        payout_address text NOT NULL,
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tournament_id, display_name)
    )""",
    "CREATE INDEX models_participant_idx ON submissions.models (participant_id, model_id)",
    """
    CREATE TABLE submissions.submissions (
        seq            bigserial UNIQUE,
        submission_id  text PRIMARY KEY,
        tournament_id  text NOT NULL,
        round_number   integer NOT NULL,
        model_id       text NOT NULL REFERENCES submissions.models,
        participant_id text NOT NULL,
        version        integer NOT NULL CHECK (version > 0),
        row_count      integer NOT NULL,
        content_sha256 text NOT NULL,
        predictions    bytea NOT NULL,
        checks         bytea NOT NULL,
        receipt        bytea NOT NULL,
        accepted_at    timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tournament_id, round_number, model_id, version),
        FOREIGN KEY (tournament_id, round_number) REFERENCES submissions.rounds
    )""",
    "CREATE INDEX submissions_round_idx ON submissions.submissions (tournament_id, round_number, seq)",
    """
    CREATE TABLE submissions.receipt_keys (
        key_id      text PRIMARY KEY,
        public_key  bytea NOT NULL,
        private_pem bytea,
        created_at  timestamptz NOT NULL DEFAULT now()
    )""",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("receipt_keys", "submissions", "models", "round_data", "rounds", "datasets", "tournaments"):
        op.execute(f"DROP TABLE submissions.{table}")
