"""Use cases of participants and API keys: plain async functions on a unit of work."""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from typing import Any

from services.submissions.domain.names import name_skeleton
from services.submissions.store import identity as repo
from shared.auth import Principal, Role, check_scopes, check_service_name, generate_key, secret_matches, split_key
from shared.db import Database
from shared.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted, Unauthenticated

MAX_NAME = 64


def clean_display_name(value: str) -> str:
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise InvalidArgument("display_name is required", metadata={"field": "display_name"})
    if len(name) > MAX_NAME or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidArgument(
            f"display_name must be 1-{MAX_NAME} printable characters", metadata={"field": "display_name"}
        )
    return name


def clean_email(value: str) -> str:
    email = value.strip()
    if email and (len(email) > 254 or email.count("@") != 1 or " " in email):
        raise InvalidArgument("email is not a valid address", metadata={"field": "email"})
    return email


async def create_participant(conn: Any, display_name: str, email: str) -> Any:
    participant_id = "p_" + secrets.token_hex(6)
    name = clean_display_name(display_name)
    return await repo.insert_participant(conn, participant_id, name, clean_email(email), name_skeleton(name))


async def require_participant_row(conn: Any, participant_id: str) -> Any:
    if not participant_id:
        raise InvalidArgument("participant_id is required", metadata={"field": "participant_id"})
    row = await repo.get_participant(conn, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id!r} not found", metadata={"participant_id": participant_id})
    return row


async def create_key(
    conn: Any,
    caller: Principal | None,
    participant_id: str,
    role: Role,
    scopes: list[str],
    description: str,
    max_keys: int | None = None,
    service_name: str = "",
) -> tuple[Any, str]:
    """Issue a key; returns its row and the full key (shown once). A service key names its service.

    A participant holds at most ``max_keys`` active keys: keys cost nothing to make, and every
    per-key allowance (upload rate, failed-authentication budget) would otherwise multiply.
    Scopes stay within the role's and the creating key's own (``check_scopes``).
    """
    if caller is not None and caller.role is Role.PARTICIPANT:
        if role is not Role.PARTICIPANT or participant_id != caller.participant_id:
            raise PermissionDenied("a participant may only create participant keys for itself")
    granted = check_scopes(role, scopes, caller)
    if role is Role.PARTICIPANT:
        await require_participant_row(conn, participant_id)
        if max_keys is not None:
            await repo.lock_participant(conn, participant_id)
            active = await repo.count_active_keys(conn, participant_id)
            if active >= max_keys:
                raise ResourceExhausted(
                    f"participant {participant_id!r} already has {active} active API keys, the limit "
                    f"(CROWDQUANT_MAX_KEYS_PER_PARTICIPANT={max_keys}); revoke one before creating another",
                    reason="API_KEY_LIMIT",
                    metadata={"limit": str(max_keys)},
                )
    elif participant_id:
        raise InvalidArgument(f"participant_id must be empty for a {role} key", metadata={"field": "participant_id"})
    service_name = check_service_name(role, service_name)
    if len(description) > 200:
        raise InvalidArgument("description must be at most 200 characters", metadata={"field": "description"})
    new = await asyncio.to_thread(generate_key)
    row = await repo.insert_key(
        conn,
        key_id=new.key_id,
        participant_id=participant_id or None,
        role=str(role),
        scopes=list(granted),
        description=description,
        salt=new.salt,
        secret_hash=new.secret_hash,
        service_name=service_name or None,
    )
    return row, new.full


async def require_key_row(conn: Any, key_id: str, caller: Principal) -> Any:
    row = await repo.get_key(conn, key_id) if key_id else None
    if not key_id:
        raise InvalidArgument("key_id is required", metadata={"field": "key_id"})
    if row is None or (caller.role is Role.PARTICIPANT and row.participant_id != caller.participant_id):
        raise NotFound(f"API key {key_id!r} not found", metadata={"key_id": key_id})
    return row


def principal_of(row: Any) -> Principal:
    return Principal(
        key_id=row.key_id,
        role=Role(row.role),
        participant_id=row.participant_id or "",
        scopes=tuple(row.scopes),
        service_name=row.service_name or "",
    )


async def verify_key(database: Database, api_key: str) -> Principal:
    """Check a full key against the stored hash; UNAUTHENTICATED for anything but an active match."""
    key_id, secret = split_key(api_key)
    async with database.connect() as conn:
        row = await repo.get_key(conn, key_id)
    if row is None:
        await asyncio.to_thread(secret_matches, secret, b"0" * 16, b"")  # same cost: no timing oracle
        raise Unauthenticated("API key not recognised", reason="API_KEY_INVALID")
    if not await asyncio.to_thread(secret_matches, secret, bytes(row.salt), bytes(row.secret_hash)):
        raise Unauthenticated("API key not recognised", reason="API_KEY_INVALID")
    if row.revoked_at is not None:
        raise Unauthenticated("API key was revoked; create a new one", reason="API_KEY_REVOKED")
    return principal_of(row)
