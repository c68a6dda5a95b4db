"""Authenticators: turn an API key into a Principal, with a short cache and failure limits that hit the guesser.

Failed checks are counted per (key id, source) and per source, where the source is the end
client's address as the edge saw it (a check forwarded by a service carries its caller's address,
so it never counts against the forwarding service). Never per key id alone: key ids are public,
and a budget per key id would let a stranger lock its owner out. A key that authenticated in the
last ``remember`` seconds (known by a hash of the whole key, which only its holder can present)
skips the limits: clients sharing an address with a guesser (a NAT, loopback) keep working.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.auth import Principal, split_key
from shared.errors import ResourceExhausted, Unauthenticated
from shared.rpc.ratelimit import FailureLimiter

MAX_SOURCE = 64


def client_source(peer: str) -> str:
    """The end client's source from a gRPC peer (``ipv4:1.2.3.4:5``): its IP, or its /64 for IPv6.

    The port is dropped (a client opens as many connections as it likes); an IPv6 client usually
    holds a whole /64, so that is one source too.
    """
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        host = rest.rsplit(":", 1)[0].strip("[]").split("%", 1)[0]
        try:
            return str(ipaddress.IPv6Network(f"{host}/64", strict=False))
        except ValueError:
            return host[:MAX_SOURCE]
    return (peer or "unknown")[:MAX_SOURCE]


class Authenticator(Protocol):
    async def authenticate(self, api_key: str, source: str) -> Principal: ...


class CachingAuthenticator:
    """Verify keys through ``verify(api_key, source)`` and cache successes for ``ttl`` seconds.

    Failures are never cached; past ``limiter``'s budget for the (key id, source) pair or for the
    source, that source gets RESOURCE_EXHAUSTED before any verification runs (so guessing is slow
    and costs no scrypt), while the same key id from elsewhere, and any key proven in the last
    ``remember`` seconds, is still verified.
    """

    def __init__(
        self,
        verify: Callable[[str, str], Awaitable[Principal]],
        ttl: float = 30.0,
        limiter: FailureLimiter | None = None,
        max_entries: int = 50_000,
        remember: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verify = verify
        self._clock = clock
        self.ttl = ttl
        self.remember = remember
        self.limiter = limiter or FailureLimiter()
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._pending: dict[bytes, asyncio.Future[Principal]] = {}
        self._proven: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    @staticmethod
    def _fingerprint(api_key: str) -> bytes:
        return hashlib.sha256(api_key.encode()).digest()

    async def authenticate(self, api_key: str, source: str) -> Principal:
        fp = self._fingerprint(api_key)
        now = self._clock()
        hit = self._cache.get(fp)
        if hit and hit[1] > now:
            return hit[0]
        pending = self._pending.get(fp)
        if pending is not None:  # the same key is being verified already: share that answer
            return await asyncio.shield(pending)
        key_id, _ = split_key(api_key)  # a malformed key costs nothing and is refused here
        if not self._is_proven(fp, now):
            self._check_limits(key_id, source)
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._pending[fp] = future
        try:
            principal = await self._verify(api_key, source)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            if isinstance(exc, Unauthenticated):
                self._proven.pop(fp, None)
                self.limiter.record_failure(f"pair:{key_id}@{source}")
                self.limiter.record_failure(f"source:{source}")
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            future.set_result(principal)
            self._remember(fp, principal.key_id, now)
            if self.ttl > 0:
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
                self._cache[fp] = (principal, now + self.ttl)
            return principal
        finally:
            del self._pending[fp]

    def _check_limits(self, key_id: str, source: str) -> None:
        for subject in (f"pair:{key_id}@{source}", f"source:{source}"):
            wait = self.limiter.blocked_for(subject)
            if wait:
                raise ResourceExhausted(
                    f"too many failed authentications from your address; retry in {int(wait) + 1} s",
                    reason="AUTH_RATE_LIMITED",
                    metadata={"retry_after_seconds": str(int(wait) + 1)},
                )

    def _is_proven(self, fp: bytes, now: float) -> bool:
        entry = self._proven.get(fp)
        if entry is None:
            return False
        if entry[1] <= now:
            del self._proven[fp]
            return False
        return True

    def _remember(self, fp: bytes, key_id: str, now: float) -> None:
        self._proven[fp] = (key_id, now + self.remember)
        self._proven.move_to_end(fp)
        while len(self._proven) > self.max_entries:
            self._proven.popitem(last=False)

    def invalidate_key(self, key_id: str) -> None:
        """Forget cached principals of ``key_id`` (called on revocation in the owning service)."""
        for fp, (principal, _) in list(self._cache.items()):
            if principal.key_id == key_id:
                self._cache.pop(fp, None)
        for fp, (proven_id, _) in list(self._proven.items()):
            if proven_id == key_id:
                self._proven.pop(fp, None)
