"""A slow-client attack on loopback: hundreds of connections trickling half a request each; the
gateway keeps answering normal requests promptly (bounded loop, stops by itself)."""

from __future__ import annotations

import asyncio

import httpx
import uvicorn

from crowdquant.cli.cluster import free_port
from services.gateway.app import create_app
from services.gateway.server import uvicorn_config
from services.gateway.settings import GatewaySettings

ATTACKERS = 300


async def test_gateway_survives_slow_clients(services):
    port = free_port()
    settings = GatewaySettings(leaderboard_addr=services["leaderboard"].address, gateway_port=port)
    server = uvicorn.Server(uvicorn_config(create_app(settings), "127.0.0.1", port, 0.5))
    task = asyncio.create_task(server.serve())
    writers = []
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        for _ in range(ATTACKERS):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/v1/rounds HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            writers.append(writer)
        await asyncio.sleep(0.2)
        for writer in writers:  # one more byte each, never finishing the headers
            writer.write(b"a")
        async with httpx.AsyncClient() as client:
            for _ in range(20):  # each answered while every attacker still holds its connection open
                resp = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                assert resp.status_code == 200
    finally:
        for writer in writers:
            writer.close()
        server.should_exit = True
        await task
