"""structlog JSON logging with request context and secret redaction.

Every line carries ``service`` and ``version``; lines written while an RPC runs also carry ``rpc``,
``request_id`` and ``peer`` (bound by the request interceptor through contextvars). Values under
secret-looking keys, and anything shaped like an API key, are replaced before the line is written.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from crowdquant import __version__

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|api_key|apikey|authorization|token|seed|mnemonic|private|wallet_key|xprv|salt)",
    re.IGNORECASE,
)
# API keys look like "k_<12 hex>.<43 url-safe base64 chars>"; extended private keys start with [tuvx]prv.
_SECRET_VALUE = re.compile(r"k_[0-9a-f]{12}\.[A-Za-z0-9_\-]{20,}|\b[tuvxyz]prv[1-9A-HJ-NP-Za-km-z]{50,}")
_SAFE_KEYS = {"key_id", "request_id", "token_kind", "page_token_present"}


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUE.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret_key(k) else redact_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key not in _SAFE_KEYS and bool(_SECRET_KEY.search(key))


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: no secret leaves the process through a log line."""
    for key in list(event_dict):
        event_dict[key] = REDACTED if _is_secret_key(key) else redact_value(event_dict[key])
    return event_dict


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and route the standard library's loggers (grpc, sqlalchemy) through it."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.dict_tracebacks if fmt == "json" else structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("asyncio", "sqlalchemy.engine", "alembic", "bitcoinlib", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service, version=__version__)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
