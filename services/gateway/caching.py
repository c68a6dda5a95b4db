"""Caching of answers: a short-lived in-memory cache of rendered bodies, and HTTP validators.

Identical requests within ``ttl`` seconds share one upstream call and one rendering (concurrent
ones wait for the first instead of calling again), so a busy page costs the leaderboard one call
per ``ttl``. Each body carries a strong ETag, the hash of its bytes, so a client that sends it back
in If-None-Match gets 304 without a body whenever the content did not change. Bodies worth it are
also gzip-compressed once, when rendered, with their own ETag (a strong ETag names one
representation), so clients that accept gzip get a fifth of the bytes for no work per request.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

GZIP_FROM_BYTES = 1024


@dataclass(frozen=True)
class Body:
    """A rendered answer: status, bytes, media type and ETag, and its gzip form when worth having."""

    status: int
    content: bytes
    media_type: str
    etag: str
    retry_after: int | None = None
    gzipped: bytes | None = None

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'


def make_body(content: bytes, media_type: str, status: int = 200, retry_after: int | None = None) -> Body:
    packed = gzip.compress(content, compresslevel=6, mtime=0) if len(content) >= GZIP_FROM_BYTES else None
    return Body(status, content, media_type, '"' + hashlib.sha256(content).hexdigest()[:32] + '"', retry_after, packed)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether Accept-Encoding allows gzip: named (or ``*``) with a weight above 0."""
    for part in (accept_encoding or "").lower().split(","):
        coding, *parameters = (piece.strip() for piece in part.split(";"))
        if coding not in ("gzip", "*"):
            continue
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        return weight > 0
    return False


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


class ResponseCache:
    def __init__(self, ttl: float, max_entries: int = 2048, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[Body, float]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[Body]] = {}

    async def get(self, key: Hashable, render: Callable[[], Awaitable[Body]]) -> tuple[Body, bool]:
        """The cached body of ``key`` or a freshly rendered one; True when the caller did not render.

        Rendering runs in its own task, so a client that disconnects does not cancel it for the
        others waiting on it. Bodies with a status below 500 are kept (a flood of requests for an
        unknown model costs one upstream call per ``ttl``); 5xx answers are never kept.
        """
        hit = self._entries.get(key)
        if hit is not None and hit[1] > self._clock():
            return hit[0], True
        task = self._inflight.get(key)
        shared = task is not None
        if task is None:
            task = asyncio.create_task(self._fill(key, render))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._inflight[key] = task
        return await asyncio.shield(task), shared

    async def _fill(self, key: Hashable, render: Callable[[], Awaitable[Body]]) -> Body:
        try:
            body = await render()
        finally:
            self._inflight.pop(key, None)
        if self.ttl > 0 and body.status < 500:
            self._entries[key] = (body, self._clock() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body
