"""Queries on submissions (accepted uploads) and receipt keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

META = (
    "seq, submission_id, tournament_id, round_number, model_id, participant_id, version, row_count, "
    "content_sha256, checks, receipt, accepted_at"
)


async def count_versions(conn: AsyncConnection, tournament_id: str, round_number: int, model_id: str) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "SELECT coalesce(max(version), 0) FROM submissions.submissions "
                    "WHERE tournament_id = :t AND round_number = :n AND model_id = :m"
                ),
                {"t": tournament_id, "n": round_number, "m": model_id},
            )
        ).scalar_one()
    )


async def insert_submission(conn: AsyncConnection, **values: Any) -> Any:
    return (
        await conn.execute(
            text(
                "INSERT INTO submissions.submissions (submission_id, tournament_id, round_number, model_id, participant_id, "
                "version, row_count, content_sha256, predictions, checks, receipt, accepted_at) VALUES (:submission_id, "
                ":tournament_id, :round_number, :model_id, :participant_id, :version, :row_count, :content_sha256, "
                f":predictions, :checks, :receipt, :accepted_at) RETURNING {META}"
            ),
            values,
        )
    ).one()


async def get_submission(
    conn: AsyncConnection, tournament_id: str, round_number: int, model_id: str, version: int
) -> Any | None:
    return (
        await conn.execute(
            text(
                f"SELECT {META} FROM submissions.submissions WHERE tournament_id = :t AND round_number = :n "
                "AND model_id = :m AND (:v = 0 OR version = :v) ORDER BY version DESC LIMIT 1"
            ),
            {"t": tournament_id, "n": round_number, "m": model_id, "v": version},
        )
    ).first()


async def get_predictions(
    conn: AsyncConnection, tournament_id: str, round_number: int, model_id: str, version: int
) -> Any | None:
    """One accepted version with its stored values, and whether it is the model's latest."""
    return (
        await conn.execute(
            text(
                f"SELECT {META}, predictions, (s.version = (SELECT max(version) FROM submissions.submissions x WHERE "
                "x.tournament_id = s.tournament_id AND x.round_number = s.round_number AND x.model_id = s.model_id)) "
                "AS latest FROM submissions.submissions s WHERE tournament_id = :t AND round_number = :n "
                "AND model_id = :m AND version = :v"
            ),
            {"t": tournament_id, "n": round_number, "m": model_id, "v": version},
        )
    ).first()


async def latest_version(conn: AsyncConnection, tournament_id: str, round_number: int, model_id: str) -> int:
    return await count_versions(conn, tournament_id, round_number, model_id)


async def list_submissions(
    conn: AsyncConnection,
    tournament_id: str,
    round_number: int,
    model_id: str | None,
    participant_id: str | None,
    latest_only: bool,
    after: int | None,
    limit: int,
) -> list[Any]:
    latest = (
        (
            "AND s.version = (SELECT max(version) FROM submissions.submissions x WHERE x.tournament_id = "
            "s.tournament_id AND x.round_number = s.round_number AND x.model_id = s.model_id)"
        )
        if latest_only
        else ""
    )
    return list(
        (
            await conn.execute(
                text(
                    f"SELECT {META}, (s.version = (SELECT max(version) FROM submissions.submissions x WHERE x.tournament_id = "
                    "s.tournament_id AND x.round_number = s.round_number AND x.model_id = s.model_id)) AS latest "
                    "FROM submissions.submissions s WHERE tournament_id = :t AND round_number = :n "
                    "AND (CAST(:m AS text) IS NULL OR model_id = :m) AND (CAST(:p AS text) IS NULL OR participant_id = :p) "
                    f"AND (CAST(:after AS bigint) IS NULL OR seq > :after) {latest} ORDER BY seq LIMIT :lim"
                ),
                {
                    "t": tournament_id,
                    "n": round_number,
                    "m": model_id,
                    "p": participant_id,
                    "after": after,
                    "lim": limit,
                },
            )
        ).all()
    )


async def predictions_since(conn: AsyncConnection, tournament_id: str, round_number: int, after_seq: int) -> list[Any]:
    """Every accepted upload of the round after ``after_seq`` with its values (originality cache)."""
    return list(
        (
            await conn.execute(
                text(
                    "SELECT seq, model_id, participant_id, version, predictions FROM submissions.submissions "
                    "WHERE tournament_id = :t AND round_number = :n AND seq > :after ORDER BY seq"
                ),
                {"t": tournament_id, "n": round_number, "after": after_seq},
            )
        ).all()
    )


async def latest_predictions(conn: AsyncConnection, tournament_id: str, round_number: int) -> list[Any]:
    """Each model's latest accepted version in the round, with values, by model id."""
    return list(
        (
            await conn.execute(
                text(
                    f"SELECT DISTINCT ON (model_id) {META}, predictions FROM submissions.submissions "
                    "WHERE tournament_id = :t AND round_number = :n ORDER BY model_id, version DESC"
                ),
                {"t": tournament_id, "n": round_number},
            )
        ).all()
    )


async def get_receipt_key(conn: AsyncConnection, key_id: str | None) -> Any | None:
    if key_id:
        return (
            await conn.execute(text("SELECT * FROM submissions.receipt_keys WHERE key_id = :k"), {"k": key_id})
        ).first()
    return (await conn.execute(text("SELECT * FROM submissions.receipt_keys ORDER BY created_at DESC LIMIT 1"))).first()


async def insert_receipt_key(conn: AsyncConnection, key_id: str, public_key: bytes, private_pem: bytes | None) -> None:
    await conn.execute(
        text(
            "INSERT INTO submissions.receipt_keys (key_id, public_key, private_pem) "
            "VALUES (:k, :pub, :priv) ON CONFLICT (key_id) DO NOTHING"
        ),
        {"k": key_id, "pub": public_key, "priv": private_pem},
    )
