"""Lookalike names: participants' and models' display names are unique by their TR39 skeleton.

Revision ID: 0004_name_skeletons
Revises: 0003_service_identities
Create Date: 2026-12-03

Each name keeps its skeleton (``services.submissions.domain.names``) under a unique index, so
``bо-linear`` (Cyrillic о) is refused next to ``bo-linear`` even when both are created at once.
Names that already collide keep working: the oldest holds the skeleton, later ones keep none
(NULL, outside the index) and are listed in the log of this migration.
"""

import logging
import unicodedata

import icu
from alembic import op
from sqlalchemy import text

revision = "0004_name_skeletons"
down_revision = "0003_service_identities"
branch_labels = None
depends_on = None
log = logging.getLogger("alembic.runtime.migration")

# frozen copy of the rule at this revision: TR39 skeleton of the NFKC form
_CHECKER = icu.SpoofChecker()


def _skeleton(name: str) -> str:
    return _CHECKER.getSkeleton(0, unicodedata.normalize("NFKC", name))


def _backfill(table: str, key: str, scope: str | None) -> None:
    bind = op.get_bind()
    order = f"{scope}, created_at, {key}" if scope else f"created_at, {key}"
    seen: set[tuple[str, str]] = set()
    scope_column = scope or "''"
    rows = bind.execute(
        text(f"SELECT {key} AS id, {scope_column} AS scope, display_name FROM submissions.{table} ORDER BY {order}")
    ).all()
    for row in rows:
        skeleton = _skeleton(row.display_name)
        if (row.scope, skeleton) in seen:
            log.warning("%s %s: display name %r looks like an older one; kept as is", table, row.id, row.display_name)
            continue
        seen.add((row.scope, skeleton))
        bind.execute(
            text(f"UPDATE submissions.{table} SET name_skeleton = :s WHERE {key} = :id"), {"s": skeleton, "id": row.id}
        )


def upgrade() -> None:
    op.execute("ALTER TABLE submissions.participants ADD COLUMN name_skeleton text")
    op.execute("ALTER TABLE submissions.models ADD COLUMN name_skeleton text")
    _backfill("participants", "participant_id", None)
    _backfill("models", "model_id", "tournament_id")
    op.execute("CREATE UNIQUE INDEX participants_name_skeleton_key ON submissions.participants (name_skeleton)")
    op.execute("CREATE UNIQUE INDEX models_name_skeleton_key ON submissions.models (tournament_id, name_skeleton)")


def downgrade() -> None:
    op.execute("ALTER TABLE submissions.models DROP COLUMN name_skeleton")
    op.execute("ALTER TABLE submissions.participants DROP COLUMN name_skeleton")
