"""Key scopes are enforced: rename them to the fixed set read, submit, stake, keys, operate.

Revision ID: 0005_key_scopes
Revises: 0004_name_skeletons
Create Date: 2026-12-03

Scopes were stored but never checked, so each key keeps what it could do: a key holding its
role's old default (participant read+upload+stake, operator read+admin, auditor read+audit,
service read+internal) gets all of its role's scopes now (``shared.auth.ROLE_SCOPES``); any other
key keeps its own, renamed (upload -> submit, admin and internal -> operate, audit -> read) and cut
to its role's. A key asked as read-only stays read-only, which is what its maker meant.
"""

from alembic import op

revision = "0005_key_scopes"
down_revision = "0004_name_skeletons"
branch_labels = None
depends_on = None

# frozen copies of the rules at this revision
_OLD_DEFAULTS = {
    "participant": ("read", "upload", "stake"),
    "operator": ("read", "admin"),
    "auditor": ("read", "audit"),
    "service": ("read", "internal"),
}
_ROLE_SCOPES = {
    "participant": ("read", "submit", "stake", "keys"),
    "operator": ("read", "submit", "stake", "keys", "operate"),
    "auditor": ("read",),
    "service": ("read", "operate"),
}


def _array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]::text[]"


def upgrade() -> None:
    for role, old in _OLD_DEFAULTS.items():
        op.execute(f"""
            UPDATE submissions.api_keys SET scopes = {_array(_ROLE_SCOPES[role])}
            WHERE role = '{role}' AND scopes @> {_array(old)} AND scopes <@ {_array(old)}""")
    for role, allowed in _ROLE_SCOPES.items():
        op.execute(f"""
            UPDATE submissions.api_keys k SET scopes = COALESCE((
                SELECT array_agg(DISTINCT renamed ORDER BY renamed) FROM (
                    SELECT CASE s WHEN 'upload' THEN 'submit' WHEN 'admin' THEN 'operate'
                                  WHEN 'internal' THEN 'operate' WHEN 'audit' THEN 'read' ELSE s END AS renamed
                    FROM unnest(k.scopes) AS s) r
                WHERE renamed = ANY({_array(allowed)})), ARRAY['read']::text[])
            WHERE role = '{role}' AND NOT scopes <@ {_array(allowed)}""")
    op.execute("""
        ALTER TABLE submissions.api_keys ADD CONSTRAINT api_keys_scopes_check
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'submit', 'stake', 'keys', 'operate']::text[])""")


def downgrade() -> None:
    op.execute("ALTER TABLE submissions.api_keys DROP CONSTRAINT api_keys_scopes_check")
