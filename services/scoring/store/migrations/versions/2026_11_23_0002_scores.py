"""Scoring runs, stored scores, meta models and Ladder states.

Revision ID: 0002_scores
Revises: 0001_base
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002_scores"
down_revision = "0001_base"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE scoring.runs (
        run_id        text PRIMARY KEY,
        tournament_id text NOT NULL,
        round_number  integer NOT NULL,
        state         text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
        progress      double precision NOT NULL DEFAULT 0,
        phase         text NOT NULL DEFAULT '',
        models_total  integer NOT NULL DEFAULT 0,
        models_scored integer NOT NULL DEFAULT 0,
        policy        integer NOT NULL DEFAULT 0,
        error_message text NOT NULL DEFAULT '',
        created_at    timestamptz NOT NULL DEFAULT now(),
        ended_at      timestamptz
    )""",
    "CREATE INDEX runs_round_idx ON scoring.runs (tournament_id, round_number, created_at)",
    # At most one run of a round is running or succeeded: a repeat joins it instead of starting over.
    "CREATE UNIQUE INDEX runs_one_live_idx ON scoring.runs (tournament_id, round_number) "
    "WHERE state IN ('running', 'succeeded')",
    """
    CREATE TABLE scoring.model_scores (
        tournament_id  text NOT NULL,
        round_number   integer NOT NULL,
        model_id       text NOT NULL,
        participant_id text NOT NULL,
        run_id         text NOT NULL REFERENCES scoring.runs,
        sort_logloss   double precision,
        sort_auc       double precision,
        sort_corr      double precision,
        sort_mmc       double precision,
        scores         bytea NOT NULL,
        PRIMARY KEY (tournament_id, round_number, model_id)
    )""",
    """
    CREATE TABLE scoring.meta_models (
        tournament_id text NOT NULL,
        round_number  integer NOT NULL,
        run_id        text NOT NULL REFERENCES scoring.runs,
        meta_model    bytea NOT NULL,
        PRIMARY KEY (tournament_id, round_number)
    )""",
    """
    CREATE TABLE scoring.ladder (
        tournament_id   text NOT NULL,
        round_number    integer NOT NULL,
        model_id        text NOT NULL,
        participant_id  text NOT NULL,
        version         integer NOT NULL,
        displayed       double precision NOT NULL,
        step            double precision NOT NULL,
        leader_losses   bytea NOT NULL,
        versions_scored integer NOT NULL,
        last_version    integer NOT NULL,
        exact_mean      double precision NOT NULL,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tournament_id, round_number, model_id)
    )""",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("ladder", "meta_models", "model_scores", "runs"):
        op.execute(f"DROP TABLE scoring.{table}")
