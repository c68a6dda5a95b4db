"""Running the gateway under uvicorn (``crowdquant serve gateway``).

``uvicorn_config`` is the one place the server's options are chosen; the benchmark uses it too so
the gateway and its hello-world baseline run with the same settings. Client addresses behind a
proxy are resolved by the gateway itself (``CROWDQUANT_GATEWAY_TRUSTED_PROXIES``), so uvicorn's
own proxy-header handling is off.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.config import ConfigError
from shared.logging import configure_logging, get_logger

log = get_logger("crowdquant.gateway")


def uvicorn_config(app: Any, host: str, port: int, grace_seconds: float = 5.0, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        backlog=2048,
        timeout_keep_alive=15,
        timeout_graceful_shutdown=grace_seconds,
        **extra,
    )


def tls_options(settings: GatewaySettings) -> dict[str, str]:
    """HTTPS from the same certificate files as gRPC (``CROWDQUANT_TLS_CERT_FILE``/``_KEY_FILE``)."""
    if settings.tls_cert_file and settings.tls_key_file:
        return {"ssl_certfile": str(settings.tls_cert_file), "ssl_keyfile": str(settings.tls_key_file)}
    if settings.tls_cert_file or settings.tls_key_file:
        raise ConfigError("CROWDQUANT_TLS_CERT_FILE and CROWDQUANT_TLS_KEY_FILE must be set together")
    return {}


def serve(settings: GatewaySettings) -> None:
    """Run until SIGTERM/SIGINT (uvicorn then finishes open requests within the grace period)."""
    configure_logging("gateway", settings.log_level, settings.log_format)
    tls = tls_options(settings)
    log.info(
        "listening",
        address=f"{settings.gateway_host}:{settings.gateway_port}",
        leaderboard=settings.leaderboard_addr,
        tls=bool(tls),
    )
    config = uvicorn_config(
        create_app(settings), settings.gateway_host, settings.gateway_port, settings.grace_seconds, **tls
    )
    uvicorn.Server(config).run()
    log.info("stopped")
