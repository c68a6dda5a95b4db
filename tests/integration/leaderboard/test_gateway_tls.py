"""The gateway serves HTTPS from certificate files (a self-signed certificate made here)."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import uvicorn

from services.gateway.app import create_app
from services.gateway.server import tls_options, uvicorn_config
from services.gateway.settings import GatewaySettings
from tests.support import self_signed_certificate


async def test_gateway_over_tls(services, tmp_path):
    from crowdquant.cli.cluster import free_port

    cert, key = self_signed_certificate(tmp_path)
    settings = GatewaySettings(
        leaderboard_addr=services["leaderboard"].address, tls_cert_file=cert, tls_key_file=key, gateway_port=free_port()
    )
    config = uvicorn_config(create_app(settings), "127.0.0.1", settings.gateway_port, 0.5, **tls_options(settings))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert))) as client:
            resp = await client.get(f"https://127.0.0.1:{settings.gateway_port}/healthz")
            assert resp.status_code == 200
        async with httpx.AsyncClient() as client:  # plain HTTP to a TLS port fails
            try:
                await client.get(f"http://127.0.0.1:{settings.gateway_port}/healthz", timeout=3)
                plain_ok = True
            except httpx.HTTPError:
                plain_ok = False
            assert not plain_ok
    finally:
        server.should_exit = True
        await task
