"""Published rounds and their entries, the publish counter, and open-round validation snapshots.

Revision ID: 0002_boards
Revises: 0001_base
Create Date: 2026-11-23

One row per model per published round holds every metric's mean and interval in fixed columns
(NULL where a metric does not apply), so loading a round is one indexed scan. ``state`` holds the
``published_version`` counter that replicas poll to notice a publish made elsewhere.
"""

from alembic import op

revision = "0002_boards"
down_revision = "0001_base"
branch_labels = None
depends_on = None

METRICS = ("logloss", "auc", "corr", "mmc")
METRIC_COLUMNS = ",\n".join(
    f"        {m}_mean double precision, {m}_ci_low double precision, {m}_ci_high double precision" for m in METRICS
)

STATEMENTS = [
    """
    CREATE TABLE leaderboard.state (
        id                smallint PRIMARY KEY CHECK (id = 1),
        published_version bigint NOT NULL DEFAULT 0 CHECK (published_version >= 0),
        updated_at        timestamptz NOT NULL DEFAULT now()
    )""",
    "INSERT INTO leaderboard.state (id) VALUES (1)",
    """
    CREATE TABLE leaderboard.rounds (
        tournament_id   text NOT NULL,
        round_number    integer NOT NULL CHECK (round_number > 0),
        main_metric     text NOT NULL CHECK (main_metric IN ('logloss', 'auc', 'corr', 'mmc')),
        metrics         text[] NOT NULL,
        meta_model      jsonb NOT NULL DEFAULT '{}',
        payouts_known   boolean NOT NULL DEFAULT false,
        published_at    timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tournament_id, round_number)
    )""",
    f"""
    CREATE TABLE leaderboard.entries (
        tournament_id            text NOT NULL,
        round_number             integer NOT NULL,
        model_id                 text NOT NULL,
        model_display_name       text NOT NULL,
        participant_display_name text NOT NULL DEFAULT '',
        main_rank                integer NOT NULL CHECK (main_rank > 0),
        stake_satoshis           bigint NOT NULL DEFAULT 0 CHECK (stake_satoshis >= 0),
        payout_satoshis          bigint NOT NULL DEFAULT 0,
{METRIC_COLUMNS},
        PRIMARY KEY (tournament_id, round_number, model_id),
        FOREIGN KEY (tournament_id, round_number) REFERENCES leaderboard.rounds ON DELETE CASCADE
    )""",
    "CREATE INDEX entries_by_model ON leaderboard.entries (model_id)",
    """
    CREATE TABLE leaderboard.validation_boards (
        tournament_id  text NOT NULL,
        round_number   integer NOT NULL CHECK (round_number > 0),
        metric         text NOT NULL CHECK (metric IN ('logloss', 'auc', 'corr', 'mmc')),
        content_sha256 text NOT NULL,
        fetched_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tournament_id, round_number)
    )""",
    """
    CREATE TABLE leaderboard.validation_entries (
        tournament_id            text NOT NULL,
        round_number             integer NOT NULL,
        model_id                 text NOT NULL,
        model_display_name       text NOT NULL,
        participant_display_name text NOT NULL DEFAULT '',
        displayed_value          double precision NOT NULL,
        PRIMARY KEY (tournament_id, round_number, model_id),
        FOREIGN KEY (tournament_id, round_number) REFERENCES leaderboard.validation_boards ON DELETE CASCADE
    )""",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("validation_entries", "validation_boards", "entries", "rounds", "state"):
        op.execute(f"DROP TABLE leaderboard.{table}")
