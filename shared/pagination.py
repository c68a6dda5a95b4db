"""AIP-158 pagination: page_size checks and opaque page tokens.

A token is URL-safe base64 of compact JSON holding the keyset position and a fingerprint of the
query's filters, so a token replayed with other filters is refused instead of skipping rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from shared.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """0 means the default, oversize is coerced down, negative is an error."""
    if requested < 0:
        raise InvalidArgument(f"page_size must not be negative (got {requested})", metadata={"field": "page_size"})
    if requested == 0:
        return default
    return min(requested, maximum)


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:12]


def encode_token(position: Any, filters: Any = None) -> str:
    raw = json.dumps({"p": position, "f": _fingerprint(filters)}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, filters: Any = None) -> Any:
    """The keyset position of ``token``; None for an empty token (the first page)."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position, fingerprint = data["p"], data["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("page_token is not a token this service issued",
                              metadata={"field": "page_token"}) from exc
    if fingerprint != _fingerprint(filters):
        raise InvalidArgument("page_token belongs to a query with other filters; start again without it",
                              metadata={"field": "page_token"})
    return position
