"""Opening and reading accounts.

Opening is idempotent by code: opening an existing account with the same spec returns it, with a
different spec is refused, because an account's type and limits decide what postings it accepts and
must not change under existing entries. Accounts are never deleted (a trigger refuses).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger.domain import AccountSpec, AccountType, require_code, validate_account
from services.payouts.ledger.pg import driver, translated
from services.payouts.ledger.records import Account, Page
from shared.errors import AlreadyExists, InvalidArgument, NotFound
from shared.pagination import decode_token, encode_token
from shared.pagination import page_size as clamp_page_size

ACCOUNT_COLUMNS = """a.id, a.code, a.type, a.non_negative, a.non_positive, a.owner,
    a.metadata::text AS metadata,
    a.created_at, b.balance"""

_OPEN = """
INSERT INTO payouts.ledger_accounts (code, type, non_negative, non_positive, owner, metadata)
SELECT code, type, nn, np, owner, metadata::jsonb
  FROM unnest($1::text[], $2::text[], $3::bool[], $4::bool[], $5::text[], $6::text[])
       AS t(code, type, nn, np, owner, metadata)
ON CONFLICT (code) DO NOTHING
"""

_BY_CODES = f"""
SELECT {ACCOUNT_COLUMNS}
  FROM payouts.ledger_accounts a JOIN payouts.ledger_balances b ON b.account_id = a.id
 WHERE a.code = ANY($1::text[])
"""


def account_from_row(row: Any) -> Account:
    return Account(
        id=row["id"],
        code=row["code"],
        type=AccountType(row["type"]),
        non_negative=row["non_negative"],
        non_positive=row["non_positive"],
        owner=row["owner"],
        metadata=json.loads(row["metadata"]),
        created_at=row["created_at"],
        balance=row["balance"],
    )


def _differences(spec: AccountSpec, account: Account) -> list[str]:
    wanted = {
        "type": spec.type,
        "non_negative": spec.non_negative,
        "non_positive": spec.non_positive,
        "owner": spec.owner,
        "metadata": dict(spec.metadata),
    }
    return [
        f"{name} {getattr(account, name)!r} (asked {value!r})"
        for name, value in wanted.items()
        if getattr(account, name) != value
    ]


async def open_accounts(conn: AsyncConnection, specs: Sequence[AccountSpec]) -> list[Account]:
    """Open every account that does not exist yet; return all of them, in the order asked."""
    checked = [validate_account(spec) for spec in specs]
    unique: dict[str, AccountSpec] = {}
    for spec in checked:
        if spec.code in unique and unique[spec.code] != spec:
            raise InvalidArgument(
                f"account {spec.code} is asked for twice with different specs", metadata={"field": "code"}
            )
        unique[spec.code] = spec
    if not unique:
        return []
    connection = await driver(conn)
    items = list(unique.values())
    async with translated():
        await connection.execute(
            _OPEN,
            [s.code for s in items],
            [s.type.value for s in items],
            [s.non_negative for s in items],
            [s.non_positive for s in items],
            [s.owner for s in items],
            [json.dumps(dict(s.metadata), sort_keys=True) for s in items],
        )
        rows = await connection.fetch(_BY_CODES, list(unique))
    found = {row["code"]: account_from_row(row) for row in rows}
    for spec in items:
        differences = _differences(spec, found[spec.code])
        if differences:
            raise AlreadyExists(
                f"account {spec.code} already exists with "
                + ", ".join(differences)
                + "; an account's spec cannot change",
                metadata={"code": spec.code},
            )
    return [found[spec.code] for spec in checked]


async def open_account(conn: AsyncConnection, spec: AccountSpec) -> Account:
    return (await open_accounts(conn, [spec]))[0]


async def get_account(conn: AsyncConnection, code: str) -> Account:
    code = require_code(code, "account_code")
    connection = await driver(conn)
    rows = await connection.fetch(_BY_CODES, [code])
    if not rows:
        raise NotFound(f"account {code} does not exist", metadata={"account_code": code})
    return account_from_row(rows[0])


async def list_accounts(
    conn: AsyncConnection,
    *,
    account_type: AccountType | None = None,
    owner: str = "",
    code_prefix: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> Page[Account]:
    """Accounts ordered by code, optionally of one type, one owner, or under a code prefix."""
    kind = AccountType(account_type).value if account_type else ""
    filters = {"type": kind, "owner": owner, "code_prefix": code_prefix}
    after = decode_token(page_token, filters) or ""
    size = clamp_page_size(page_size)
    connection = await driver(conn)
    rows = await connection.fetch(
        f"""
        SELECT {ACCOUNT_COLUMNS}
          FROM payouts.ledger_accounts a JOIN payouts.ledger_balances b ON b.account_id = a.id
         WHERE a.code > $1
           AND ($2 = '' OR a.type = $2)
           AND ($3 = '' OR a.owner = $3)
           AND ($4 = '' OR starts_with(a.code, $4))
         ORDER BY a.code
         LIMIT $5
        """,
        after,
        kind,
        owner,
        code_prefix,
        size + 1,
    )
    accounts = [account_from_row(row) for row in rows[:size]]
    token = encode_token(accounts[-1].code, filters) if len(rows) > size else ""
    return Page(accounts, token)
