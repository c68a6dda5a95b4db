"""Queries of the scoring schema."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

SORT_COLUMNS = {"logloss": "sort_logloss", "auc": "sort_auc", "corr": "sort_corr", "mmc": "sort_mmc"}


async def live_run(conn: AsyncConnection, tournament_id: str, round_number: int) -> Any | None:
    return (
        await conn.execute(
            text(
                "SELECT * FROM scoring.runs WHERE tournament_id = :t AND round_number = :n "
                "AND state IN ('running', 'succeeded')"
            ),
            {"t": tournament_id, "n": round_number},
        )
    ).first()


def stakes_text(stakes: dict[str, int]) -> str:
    """Stakes as a run records them: canonical JSON, so equal stakes compare equal as text."""
    return json.dumps(dict(sorted(stakes.items())), separators=(",", ":"))


async def insert_run(
    conn: AsyncConnection, run_id: str, tournament_id: str, round_number: int, policy: int, stakes: dict[str, int]
) -> None:
    await conn.execute(
        text(
            "INSERT INTO scoring.runs (run_id, tournament_id, round_number, state, policy, stakes) "
            "VALUES (:r, :t, :n, 'running', :p, :s)"
        ),
        {"r": run_id, "t": tournament_id, "n": round_number, "p": policy, "s": stakes_text(stakes)},
    )


async def get_run(conn: AsyncConnection, run_id: str) -> Any | None:
    return (await conn.execute(text("SELECT * FROM scoring.runs WHERE run_id = :r"), {"r": run_id})).first()


async def update_run(conn: AsyncConnection, run_id: str, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    ended = ", ended_at = now()" if values.get("state") in ("succeeded", "failed", "cancelled") else ""
    await conn.execute(
        text(f"UPDATE scoring.runs SET {sets}{ended} WHERE run_id = :run_id"), {"run_id": run_id, **values}
    )


async def store_results(
    conn: AsyncConnection, run_id: str, tournament_id: str, round_number: int, rows: list[dict[str, Any]], meta: bytes
) -> None:
    await conn.execute(
        text("DELETE FROM scoring.model_scores WHERE tournament_id = :t AND round_number = :n"),
        {"t": tournament_id, "n": round_number},
    )
    if rows:
        await conn.execute(
            text(
                "INSERT INTO scoring.model_scores (tournament_id, round_number, model_id, participant_id, run_id, "
                "sort_logloss, sort_auc, sort_corr, sort_mmc, scores) VALUES (:t, :n, :model_id, :participant_id, "
                ":run_id, :sort_logloss, :sort_auc, :sort_corr, :sort_mmc, :scores)"
            ),
            [{"t": tournament_id, "n": round_number, "run_id": run_id, **row} for row in rows],
        )
    await conn.execute(
        text(
            "INSERT INTO scoring.meta_models (tournament_id, round_number, run_id, meta_model) VALUES (:t, :n, :r, :m) "
            "ON CONFLICT (tournament_id, round_number) DO UPDATE SET run_id = :r, meta_model = :m"
        ),
        {"t": tournament_id, "n": round_number, "r": run_id, "m": meta},
    )


async def get_scores(conn: AsyncConnection, tournament_id: str, round_number: int, model_id: str) -> Any | None:
    return (
        await conn.execute(
            text("SELECT * FROM scoring.model_scores WHERE tournament_id = :t AND round_number = :n AND model_id = :m"),
            {"t": tournament_id, "n": round_number, "m": model_id},
        )
    ).first()


async def list_scores(
    conn: AsyncConnection, tournament_id: str, round_number: int, metric: str, after: Any, limit: int
) -> list[Any]:
    """Best first by ``metric`` (NULLs last, then by model id), keyset-paginated on (k0, k1, model_id)."""
    column = SORT_COLUMNS[metric]
    sign = "" if metric == "logloss" else "-"
    k0 = f"(CASE WHEN {column} IS NULL THEN 1 ELSE 0 END)"
    k1 = f"coalesce({sign}{column}, 0)"
    params: dict[str, Any] = {"t": tournament_id, "n": round_number, "lim": limit}
    where = ""
    if after is not None:
        where = f"AND ({k0}, {k1}, model_id) > (:a0, :a1, :a2)"
        params.update(a0=after[0], a1=after[1], a2=after[2])
    return list(
        (
            await conn.execute(
                text(
                    f"SELECT *, {k0} AS k0, {k1} AS k1 FROM scoring.model_scores WHERE tournament_id = :t AND round_number = :n "
                    f"{where} ORDER BY {k0}, {k1}, model_id LIMIT :lim"
                ),
                params,
            )
        ).all()
    )


async def count_scores(conn: AsyncConnection, tournament_id: str, round_number: int) -> int:
    return int(
        (
            await conn.execute(
                text("SELECT count(*) FROM scoring.model_scores WHERE tournament_id = :t AND round_number = :n"),
                {"t": tournament_id, "n": round_number},
            )
        ).scalar_one()
    )


async def get_meta(conn: AsyncConnection, tournament_id: str, round_number: int) -> Any | None:
    return (
        await conn.execute(
            text("SELECT * FROM scoring.meta_models WHERE tournament_id = :t AND round_number = :n"),
            {"t": tournament_id, "n": round_number},
        )
    ).first()


async def get_ladder(conn: AsyncConnection, tournament_id: str, round_number: int, model_id: str) -> Any | None:
    """A model's public Ladder row (its displayed score is NULL until one of its versions set it)."""
    return (
        await conn.execute(
            text("SELECT * FROM scoring.ladder WHERE tournament_id = :t AND round_number = :n AND model_id = :m"),
            {"t": tournament_id, "n": round_number, "m": model_id},
        )
    ).first()


async def lock_ladder_level(
    conn: AsyncConnection, tournament_id: str, round_number: int, participant_id: str
) -> Any | None:
    """A participant's private Ladder level, locked: its models are judged one at a time."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('scoring.ladder'), hashtext(:t || '/' || :n || '/' || :p))"),
        {"t": tournament_id, "n": str(round_number), "p": participant_id},
    )
    return (
        await conn.execute(
            text(
                "SELECT * FROM scoring.ladder_levels WHERE tournament_id = :t AND round_number = :n AND participant_id = :p"
            ),
            {"t": tournament_id, "n": round_number, "p": participant_id},
        )
    ).first()


async def upsert_ladder_level(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(
        text(
            "INSERT INTO scoring.ladder_levels (tournament_id, round_number, participant_id, displayed, leader_mean, "
            "step, leader_losses, leader_model_id, leader_version, submissions) VALUES (:tournament_id, :round_number, "
            ":participant_id, :displayed, :leader_mean, :step, :leader_losses, :leader_model_id, :leader_version, "
            ":submissions) ON CONFLICT (tournament_id, round_number, participant_id) DO UPDATE SET "
            "displayed = :displayed, leader_mean = :leader_mean, step = :step, leader_losses = :leader_losses, "
            "leader_model_id = :leader_model_id, leader_version = :leader_version, submissions = :submissions, "
            "updated_at = now()"
        ),
        values,
    )


async def upsert_ladder(conn: AsyncConnection, **values: Any) -> None:
    """A model's public row; ``displayed``/``version`` None keep what it showed before."""
    await conn.execute(
        text(
            "INSERT INTO scoring.ladder (tournament_id, round_number, model_id, participant_id, version, displayed, "
            "versions_scored, last_version) VALUES (:tournament_id, :round_number, :model_id, :participant_id, "
            ":version, :displayed, 1, :last_version) ON CONFLICT (tournament_id, round_number, model_id) DO UPDATE SET "
            "version = coalesce(:version, scoring.ladder.version), "
            "displayed = coalesce(:displayed, scoring.ladder.displayed), "
            "versions_scored = scoring.ladder.versions_scored + 1, last_version = :last_version, "
            "updated_at = CASE WHEN :displayed IS NULL THEN scoring.ladder.updated_at ELSE now() END"
        ),
        values,
    )


async def list_ladder(
    conn: AsyncConnection, tournament_id: str, round_number: int, ascending: bool, after: Any, limit: int
) -> list[Any]:
    sign = "" if ascending else "-"
    where = ""
    params: dict[str, Any] = {"t": tournament_id, "n": round_number, "lim": limit}
    if after is not None:
        where = f"AND ({sign}displayed, model_id) > (:a0, :a1)"
        params.update(a0=after[0], a1=after[1])
    return list(
        (
            await conn.execute(
                text(
                    f"SELECT *, {sign}displayed AS k FROM scoring.ladder WHERE tournament_id = :t AND round_number = :n "
                    f"AND displayed IS NOT NULL {where} "
                    f"ORDER BY {sign}displayed, model_id LIMIT :lim"
                ),
                params,
            )
        ).all()
    )


async def ladder_versions(conn: AsyncConnection, tournament_id: str, round_number: int) -> dict[str, int]:
    """The last version judged of each model on the round's Ladder."""
    rows = await conn.execute(
        text("SELECT model_id, last_version FROM scoring.ladder WHERE tournament_id = :t AND round_number = :n"),
        {"t": tournament_id, "n": round_number},
    )
    return {r.model_id: r.last_version for r in rows}


async def fail_orphan_runs(conn: AsyncConnection, mine: list[str]) -> None:
    """Runs marked running by a process that died (none of ``mine``) are failed."""
    await conn.execute(
        text(
            "UPDATE scoring.runs SET state = 'failed', error_message = "
            "'the scoring process stopped during the run', ended_at = now() "
            "WHERE state = 'running' AND NOT (run_id = ANY(:mine))"
        ),
        {"mine": mine},
    )


async def mark_published(conn: AsyncConnection, tournament_id: str, round_number: int) -> Any:
    """Record that the round is published (idempotent); its row, with the first publication's time."""
    await conn.execute(
        text(
            "INSERT INTO scoring.published_rounds (tournament_id, round_number) VALUES (:t, :n) "
            "ON CONFLICT (tournament_id, round_number) DO NOTHING"
        ),
        {"t": tournament_id, "n": round_number},
    )
    return (
        await conn.execute(
            text("SELECT * FROM scoring.published_rounds WHERE tournament_id = :t AND round_number = :n"),
            {"t": tournament_id, "n": round_number},
        )
    ).one()


async def is_published(conn: AsyncConnection, tournament_id: str, round_number: int) -> bool:
    found = await conn.execute(
        text("SELECT 1 FROM scoring.published_rounds WHERE tournament_id = :t AND round_number = :n"),
        {"t": tournament_id, "n": round_number},
    )
    return found.first() is not None
