"""AIP-158 pagination: page_size checks and opaque page tokens.

A token is URL-safe base64 of compact JSON holding the keyset position and a fingerprint of the
query's filters, so a token replayed with other filters is refused instead of skipping rows, then
a dot and an HMAC-SHA256 tag: a forged or garbled token is INVALID_ARGUMENT before its content is
read. The key comes from ``CROWDQUANT_PAGE_TOKEN_SECRET``, else from the service key every replica
of a service shares (so a token from one replica is good at another); with neither, a key made for
this process (a single replica, e.g. a laptop).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
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


_TAG_BYTES = 16
_key = secrets.token_bytes(32)


def configure(secret: str | None) -> None:
    """Sign tokens with a key derived from ``secret`` (kept for the process's lifetime)."""
    global _key
    if secret:
        _key = hmac.new(secret.encode(), b"crowdquant page tokens v1", hashlib.sha256).digest()


def _tag(body: bytes) -> bytes:
    return hmac.new(_key, body, hashlib.sha256).digest()[:_TAG_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:12]


def encode_token(position: Any, filters: Any = None) -> str:
    raw = json.dumps({"p": position, "f": _fingerprint(filters)}, separators=(",", ":"), default=str).encode()
    return f"{_b64(raw)}.{_b64(_tag(raw))}"


def decode_token(token: str, filters: Any = None) -> Any:
    """The keyset position of ``token``; None for an empty token (the first page)."""
    if not token:
        return None
    try:
        body_text, _, tag_text = token.partition(".")
        body = _unb64(body_text)
        if not hmac.compare_digest(_unb64(tag_text), _tag(body)):
            raise ValueError("bad tag")
        data = json.loads(body)
        position, fingerprint = data["p"], data["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(
            "page_token is not a token this service issued", metadata={"field": "page_token"}
        ) from exc
    if fingerprint != _fingerprint(filters):
        raise InvalidArgument(
            "page_token belongs to a query with other filters; start again without it", metadata={"field": "page_token"}
        )
    return position
