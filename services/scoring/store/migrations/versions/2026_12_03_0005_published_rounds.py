"""Rounds the leaderboard has published, and the stakes each scoring run weighed.

``scoring.published_rounds``: from publication on every participant may read a round's scores.

Scoring used to ask the leaderboard; now the leaderboard tells scoring (MarkRoundPublished), so
scoring calls no service downstream of it. A round published before this migration becomes
readable again when it is next published (publishing is idempotent).

``scoring.runs.stakes``: stakes now come with ScoreRound; a run records them (canonical JSON), so a
round scored again with other stakes gets a new run instead of the old one's results.

Revision ID: 0005_published_rounds
Revises: 0004_login_role
Create Date: 2026-12-03
"""

from alembic import op

revision = "0005_published_rounds"
down_revision = "0004_login_role"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE scoring.published_rounds (
            tournament_id  text NOT NULL,
            round_number   integer NOT NULL,
            published_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tournament_id, round_number)
        )"""
    )
    op.execute("ALTER TABLE scoring.runs ADD COLUMN stakes text NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE scoring.runs DROP COLUMN stakes")
    op.execute("DROP TABLE scoring.published_rounds")
