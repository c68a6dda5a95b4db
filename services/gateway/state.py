"""What the gateway's routes share: settings, the leaderboard client, the answer cache, metrics
and the rate limiter (one per process)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.gateway.caching import ResponseCache
from services.gateway.limits import TokenBuckets
from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import GatewaySettings, Network
from services.gateway.upstream import Leaderboard


@dataclass
class Gateway:
    settings: GatewaySettings
    leaderboard: Leaderboard
    cache: ResponseCache
    metrics: GatewayMetrics
    limiter: TokenBuckets
    trusted: tuple[Network, ...]

    @property
    def max_age(self) -> int:
        return math.ceil(self.settings.gateway_cache_seconds)

    @property
    def tournament(self) -> str:
        return self.settings.gateway_tournament

    @property
    def page_size(self) -> int:
        return self.settings.gateway_page_size

    @classmethod
    def build(cls, settings: GatewaySettings, clock: Callable[[], float] = time.monotonic) -> Gateway:
        metrics = GatewayMetrics()
        return cls(
            settings=settings,
            leaderboard=Leaderboard(
                settings.leaderboard_addr, settings.gateway_upstream_deadline_seconds, metrics, settings.tls_ca_file
            ),
            cache=ResponseCache(settings.gateway_cache_seconds, clock=clock),
            metrics=metrics,
            limiter=TokenBuckets(
                settings.gateway_rate_limit_per_second, settings.gateway_rate_limit_burst, clock=clock
            ),
            trusted=settings.trusted_proxies,
        )
