"""Per-client rate limiting: a token bucket per address, and who the client is behind a proxy.

Each client may burst up to ``burst`` requests and then ``rate`` per second. Buckets live in a
bounded LRU so a flood of addresses costs memory only up to ``max_clients`` (a forgotten client
starts again with a full bucket, which is harmless). The clock is injected so tests don't sleep.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from services.gateway.settings import Network


class TokenBuckets:
    def __init__(
        self, rate: float, burst: int, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one token of ``client``: 0.0 when allowed, else the seconds until one is back."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(wait))


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address a request came from: the peer, unless the peer is a trusted proxy; then the
    right-most address of X-Forwarded-For that is not itself a trusted proxy (the left part of the
    header is whatever the client chose to send, so it is never believed)."""
    if not trusted or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = str(address)
        if not any(address in net for net in trusted):
            return client
    return client


def _is_trusted(peer: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in net for net in trusted)
