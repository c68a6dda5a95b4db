"""Authenticators: turn an API key into a Principal, with a short cache and failure limits."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.auth import Principal, split_key
from shared.errors import ResourceExhausted, Unauthenticated
from shared.rpc.ratelimit import FailureLimiter


class Authenticator(Protocol):
    async def authenticate(self, api_key: str, peer: str) -> Principal: ...


class CachingAuthenticator:
    """Verify keys through ``verify`` and cache successes for ``ttl`` seconds.

    Failures are never cached but are counted per key id and per peer; past the limit the caller
    gets RESOURCE_EXHAUSTED before any verification runs (so guessing secrets is slow).
    """

    def __init__(self, verify: Callable[[str], Awaitable[Principal]], ttl: float = 30.0,
                 limiter: FailureLimiter | None = None, max_entries: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._verify = verify
        self._clock = clock
        self.ttl = ttl
        self.limiter = limiter or FailureLimiter()
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._pending: dict[bytes, asyncio.Future[Principal]] = {}

    @staticmethod
    def _fingerprint(api_key: str) -> bytes:
        return hashlib.sha256(api_key.encode()).digest()

    async def authenticate(self, api_key: str, peer: str) -> Principal:
        fp = self._fingerprint(api_key)
        now = self._clock()
        hit = self._cache.get(fp)
        if hit and hit[1] > now:
            return hit[0]
        pending = self._pending.get(fp)
        if pending is not None:  # the same key is being verified already: share that answer
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._pending[fp] = future
        try:
            principal = await self._authenticate(api_key, fp, peer, now)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            future.set_result(principal)
            return principal
        finally:
            del self._pending[fp]

    async def _authenticate(self, api_key: str, fp: bytes, peer: str, now: float) -> Principal:
        """One verification (many concurrent calls with one key share it, so a burst costs one scrypt)."""
        key_id, _ = split_key(api_key)
        for subject in (f"key:{key_id}", f"peer:{peer.rsplit(':', 1)[0]}"):
            wait = self.limiter.blocked_for(subject)
            if wait:
                raise ResourceExhausted(
                    f"too many failed authentications; retry in {int(wait) + 1} s",
                    reason="AUTH_RATE_LIMITED", metadata={"retry_after_seconds": str(int(wait) + 1)},
                )
        try:
            principal = await self._verify(api_key)
        except Unauthenticated:
            self.limiter.record_failure(f"key:{key_id}")
            self.limiter.record_failure(f"peer:{peer.rsplit(':', 1)[0]}")
            raise
        if self.ttl > 0:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[fp] = (principal, now + self.ttl)
        return principal

    def invalidate_key(self, key_id: str) -> None:
        """Forget cached principals of ``key_id`` (called on revocation in the owning service)."""
        for fp, (principal, _) in list(self._cache.items()):
            if principal.key_id == key_id:
                self._cache.pop(fp, None)
