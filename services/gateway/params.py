"""Query parameters of the API and pages, checked once: a bad one is a 400 naming it.

The parsed query is also the cache key, so ``?round=03`` and ``?round=3`` share an entry and
unknown parameters cannot be used to bypass the cache.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from crowdquant.common.v1 import common_pb2
from services.gateway.present import METRIC_BY_NAME
from services.gateway.upstream import HttpError

TOURNAMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MODEL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_TOKEN = 512
MAX_PAGE = 1000


def bad(name: str, why: str) -> HttpError:
    return HttpError(400, "INVALID_ARGUMENT", f"{name}: {why}")


def _int(params: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise bad(name, f"expected a whole number between {low} and {high} (got {raw[:20]!r})")
    value = int(raw)
    if not low <= value <= high:
        raise bad(name, f"expected a whole number between {low} and {high} (got {value})")
    return value


def tournament(params: Mapping[str, str], default: str) -> str:
    value = params.get("tournament", "").strip() or default
    if value and not TOURNAMENT.fullmatch(value):
        raise bad("tournament", "expected a tournament id such as 'main' (lower-case letters, digits, '-')")
    return value


def metric(params: Mapping[str, str]) -> int:
    raw = params.get("metric", "").strip().lower()
    if not raw:
        return common_pb2.METRIC_UNSPECIFIED
    if raw not in METRIC_BY_NAME:
        raise bad("metric", f"choose one of {', '.join(sorted(METRIC_BY_NAME))} (got {raw[:20]!r})")
    return METRIC_BY_NAME[raw]


def page_token(params: Mapping[str, str]) -> str:
    token = params.get("page_token", "")
    if len(token) > MAX_TOKEN or not re.fullmatch(r"[A-Za-z0-9_.-]*", token):  # base64url, a dot, its tag
        raise bad("page_token", "not a token this API issued; start again without it")
    return token


def model_id(value: str) -> str:
    if not MODEL_ID.fullmatch(value):
        raise HttpError(404, "NOT_FOUND", f"model {value[:64]!r} not found")
    return value


@dataclass(frozen=True)
class BoardQuery:
    tournament: str
    round: int
    metric: int
    page_size: int
    page_token: str


@dataclass(frozen=True)
class ReputationQuery:
    tournament: str
    metric: int
    window: int
    page_size: int
    page_token: str


@dataclass(frozen=True)
class RoundsQuery:
    tournament: str
    page_size: int
    page_token: str


def board_query(params: Mapping[str, str], default_tournament: str, default_size: int) -> BoardQuery:
    return BoardQuery(
        tournament(params, default_tournament),
        _int(params, "round", 0, 10**8, 0),
        metric(params),
        _int(params, "page_size", 1, MAX_PAGE, default_size),
        page_token(params),
    )


def reputation_query(params: Mapping[str, str], default_tournament: str, default_size: int) -> ReputationQuery:
    return ReputationQuery(
        tournament(params, default_tournament),
        metric(params),
        _int(params, "window", 1, 100, 0) if params.get("window") else 0,
        _int(params, "page_size", 1, MAX_PAGE, default_size),
        page_token(params),
    )


def rounds_query(params: Mapping[str, str], default_tournament: str, default_size: int) -> RoundsQuery:
    return RoundsQuery(
        tournament(params, default_tournament), _int(params, "page_size", 1, MAX_PAGE, default_size), page_token(params)
    )
