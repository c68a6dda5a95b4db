"""Settings of the gateway (``CROWDQUANT_GATEWAY_*`` besides the common ones).

``CACHE_SECONDS`` is both how long the gateway reuses an upstream answer for identical requests
and the ``max-age`` it tells browsers and proxies; a publish shows up within about that time plus
the leaderboard's own version check. The rate limit is a token bucket per client address:
``RATE_LIMIT_PER_SECOND`` refill, ``RATE_LIMIT_BURST`` capacity. The client address is the TCP
peer, or, when the peer is one of ``TRUSTED_PROXIES`` (comma-separated addresses or networks), the
right-most untrusted address of ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from shared.config import GATEWAY_PORT, CommonSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks; a bare address is a one-address network."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


class GatewaySettings(CommonSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=GATEWAY_PORT, ge=0, lt=65536)
    gateway_rate_limit_per_second: float = Field(default=20.0, gt=0, le=1_000_000)
    gateway_rate_limit_burst: int = Field(default=60, ge=1, le=1_000_000)
    gateway_trusted_proxies: str = ""
    gateway_cache_seconds: float = Field(default=5.0, ge=0, le=3600)
    gateway_upstream_deadline_seconds: float = Field(default=3.0, gt=0, le=60)
    # Tournament shown when a request names none; empty = the leaderboard's default.
    gateway_tournament: str = ""
    gateway_page_size: int = Field(default=100, ge=1, le=1000)

    @field_validator("gateway_trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"expected comma-separated IP addresses or networks ({exc})") from None
        return value

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return parse_networks(self.gateway_trusted_proxies)
