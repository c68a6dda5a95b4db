"""One Ladder per participant and round; the step and exact means stay private.

A participant's models share one leader (``scoring.ladder_levels``), so a new model does not start a
new Ladder. ``scoring.ladder`` keeps each model's public row: its displayed score only once one of
its versions set the participant's level (NULL until then), and which versions were judged.

Revision ID: 0003_ladder_per_participant
Revises: 0002_scores
Create Date: 2026-12-03
"""

from alembic import op

revision = "0003_ladder_per_participant"
down_revision = "0002_scores"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE scoring.ladder_levels (
        tournament_id   text NOT NULL,
        round_number    integer NOT NULL,
        participant_id  text NOT NULL,
        displayed       double precision NOT NULL,
        leader_mean     double precision NOT NULL,
        step            double precision NOT NULL,
        leader_losses   bytea NOT NULL,
        leader_model_id text NOT NULL,
        leader_version  integer NOT NULL,
        submissions     integer NOT NULL,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tournament_id, round_number, participant_id)
    )""",
    # Each participant's best model row becomes its level (rounds open while this migration runs).
    """
    INSERT INTO scoring.ladder_levels (tournament_id, round_number, participant_id, displayed, leader_mean, step,
                                       leader_losses, leader_model_id, leader_version, submissions)
    SELECT DISTINCT ON (tournament_id, round_number, participant_id) tournament_id, round_number, participant_id,
           displayed, exact_mean, step, leader_losses, model_id, version,
           sum(versions_scored) OVER (PARTITION BY tournament_id, round_number, participant_id)
    FROM scoring.ladder ORDER BY tournament_id, round_number, participant_id, exact_mean, model_id""",
    "ALTER TABLE scoring.ladder DROP COLUMN step, DROP COLUMN leader_losses, DROP COLUMN exact_mean",
    "ALTER TABLE scoring.ladder ALTER COLUMN displayed DROP NOT NULL, ALTER COLUMN version DROP NOT NULL",
    "CREATE INDEX ladder_public_idx ON scoring.ladder (tournament_id, round_number, displayed, model_id) "
    "WHERE displayed IS NOT NULL",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX scoring.ladder_public_idx")
    op.execute("DELETE FROM scoring.ladder WHERE displayed IS NULL")
    op.execute(
        "ALTER TABLE scoring.ladder ADD COLUMN step double precision NOT NULL DEFAULT 0, "
        "ADD COLUMN leader_losses bytea NOT NULL DEFAULT '', ADD COLUMN exact_mean double precision "
        "NOT NULL DEFAULT 0, ALTER COLUMN displayed SET NOT NULL, ALTER COLUMN version SET NOT NULL"
    )
    op.execute("DROP TABLE scoring.ladder_levels")
