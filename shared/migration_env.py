"""The Alembic environment every service's ``migrations/env.py`` delegates to.

Each schema keeps its own ``alembic_version`` table, so services migrate independently.
"""

from __future__ import annotations

from alembic import context


def run() -> None:
    config = context.config
    schema = config.attributes["schema"]
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through shared.db.migrate (crowdquant db upgrade)")
    context.configure(
        connection=connection,
        version_table_schema=schema,
        include_schemas=True,
        transaction_per_migration=False,
    )
    connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}", public')
    with context.begin_transaction():
        context.run_migrations()
