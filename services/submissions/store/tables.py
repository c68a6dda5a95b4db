"""Tables of the submissions schema (SQLAlchemy Core)."""

from __future__ import annotations

from sqlalchemy import ARRAY, Column, DateTime, LargeBinary, MetaData, Table, Text, func

SCHEMA = "submissions"
metadata = MetaData(schema=SCHEMA)

participants = Table(
    "participants",
    metadata,
    Column("participant_id", Text, primary_key=True),
    Column("display_name", Text, nullable=False, unique=True),
    Column("email", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("name_skeleton", Text, nullable=True),  # unique: lookalike names are refused (domain/names.py)
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("participant_id", Text, nullable=True),
    Column("role", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("salt", LargeBinary, nullable=False),
    Column("secret_hash", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("service_name", Text, nullable=True),
)
