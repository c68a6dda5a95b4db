"""The public web page in headless Chromium: table rows, sorting, the round switcher, a model page
with its charts drawn, on a desktop and a phone-sized screen. Screenshots go to tests/artifacts/.

Needs Debian's chromium (scripts/install_browser.sh) and the playwright package; skips with a
clear message only when one of them is not installed.
"""

from __future__ import annotations

import asyncio
import math
import random
import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdquant.cli.bootstrap import create_service_keys
from services.gateway.app import create_app
from services.gateway.server import uvicorn_config
from services.gateway.settings import GatewaySettings
from services.leaderboard.domain.boards import ModelResult, RoundBoard, Source
from services.leaderboard.domain.metrics import Metric, Score
from services.leaderboard.usecases.publish import store_round
from shared.config import CommonSettings
from shared.db import Database
from tests.support import start_services, stop_services

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NAMES = [
    "quasar",
    "deep-ridge",
    "nightjar",
    "lattice",
    "sparrow",
    "tidewater",
    "brightline",
    "orca",
    "kestrel",
    "monsoon",
    "ember",
    "halcyon",
    "juniper",
    "vector-9",
    "cobalt",
    "meridian",
    "zephyr",
    "granite",
    "lumen",
    "aurora",
    "basalt",
    "cinder",
    "drift",
    "fathom",
    "glacier",
]
PEOPLE = ["ada", "grace", "linus", "barbara", "dennis", "margaret", "ken", "frances", "alan", "radia"]
ROUNDS = 6


def published_rounds() -> list[RoundBoard]:
    """Six rounds of a plausible tournament: skill persists, noise varies, payouts follow scores."""
    rng = random.Random(2016)
    skill = {name: rng.gauss(0.012, 0.012) for name in NAMES}
    boards = []
    start = datetime(2026, 9, 1, 12, tzinfo=UTC)
    for number in range(1, ROUNDS + 1):
        results = []
        for i, name in enumerate(NAMES):
            if number < 3 and i % 7 == 6:
                continue  # some models joined later
            corr = round(skill[name] + rng.gauss(0, 0.008), 4)
            mmc = round(0.4 * (skill[name] - 0.012) + rng.gauss(0, 0.004), 4)
            half = abs(rng.gauss(0.006, 0.002))
            stake = rng.choice([0, 50_000, 200_000, 1_500_000, 4_000_000])
            payout = int(stake * max(-0.05, min(0.05, 0.5 * corr + 2 * mmc)))
            results.append(
                ModelResult(
                    f"m_{name}",
                    name,
                    PEOPLE[i % len(PEOPLE)],
                    {
                        Metric.CORR: Score(corr, corr - half, corr + half),
                        Metric.MMC: Score(mmc, mmc - half, mmc + half),
                    },
                    stake,
                    payout,
                )
            )
        boards.append(
            RoundBoard(
                "main",
                number,
                Source.LIVE,
                Metric.CORR,
                (Metric.CORR, Metric.MMC),
                tuple(results),
                published_at=start + timedelta(days=7 * number),
                meta_model={Metric.CORR: Score(0.021, 0.015, 0.027)},
                payouts_known=True,
            )
        )
    return boards


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def chromium() -> str:
    found = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if not found:
        pytest.skip("Chromium is not installed: run scripts/install_browser.sh (Debian package 'chromium')")
    return found


@pytest.fixture(scope="module")
def playwright_api(chromium):
    try:
        from playwright import async_api
    except ImportError:
        pytest.skip("the playwright package is not installed: .venv/bin/pip install 'playwright>=1.40,<2'")
    return async_api


@pytest.fixture(scope="module")
async def site(database_url, playwright_api):
    """The leaderboard (with submissions for its peers) and the gateway under a real uvicorn."""
    keys = await create_service_keys(CommonSettings(), "browser test", url=database_url)
    running = await start_services(database_url, keys, names=["submissions", "leaderboard"])
    database = Database(database_url, schema="leaderboard", pool_size=1)
    try:
        for board in published_rounds():
            async with database.transaction() as conn:
                await store_round(conn, board)
    finally:
        await database.dispose()
    await running["leaderboard"].ctx.extras["cache"].sync()
    settings = GatewaySettings(
        leaderboard_addr=running["leaderboard"].address,
        gateway_cache_seconds=1.0,
        gateway_rate_limit_per_second=1000,
        gateway_rate_limit_burst=1000,
    )
    sock = free_socket()
    server = __import__("uvicorn").Server(uvicorn_config(create_app(settings), "127.0.0.1", 0, 0.5))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
        await stop_services(running)


@pytest.fixture(scope="module")
async def browser(playwright_api, chromium):
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def column(page, index: int) -> list[float]:
    values = await page.eval_on_selector_all(
        "table.board tbody tr", f"rows => rows.map(r => r.cells[{index}].getAttribute('data-v'))"
    )
    return [float(v) for v in values]


async def no_sideways_scroll(page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


async def test_board_sorts_switches_rounds_and_opens_a_model(site, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        await page.goto(site + "/")
        assert "Round 6" in await page.locator("h1").inner_text()
        rows = page.locator("table.board tbody tr")
        assert await rows.count() == len(NAMES)
        ranks = await column(page, 0)
        assert ranks == sorted(ranks) and ranks[0] == 1
        corr = await column(page, 3)
        assert corr == sorted(corr, reverse=True)
        await page.screenshot(path=str(ARTIFACTS / "gateway-board-desktop.png"), full_page=True)

        await page.locator("th button", has_text="MMC").click()
        mmc = await column(page, 4)
        assert mmc == sorted(mmc, reverse=True) and mmc != corr
        assert await page.locator("th", has_text="MMC").get_attribute("aria-sort") == "descending"
        await page.locator("th button", has_text="MMC").click()
        assert await column(page, 4) == sorted(mmc)
        await page.locator("th button", has_text="Model").click()
        names = await page.eval_on_selector_all(
            "table.board tbody tr td:nth-child(2)", "cells => cells.map(c => c.textContent.trim())"
        )
        assert names == sorted(names)

        await page.select_option("select[name=round]", "3")
        await page.wait_for_url("**round=3**")
        assert "Round 3" in await page.locator("h1").inner_text()
        assert await rows.count() == len(NAMES)

        first = page.locator("table.board tbody tr td:nth-child(2) a").first
        name = await first.inner_text()
        await first.click()
        await page.wait_for_url("**/models/**")
        assert await page.locator("h1").inner_text() == name
        charts = page.locator("svg.chart")
        assert await charts.count() == 2
        dots = await page.locator("#scores-chart circle.dot").count()
        assert dots == 2 * ROUNDS
        box = await charts.first.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        assert await page.locator("#payouts-chart rect.bar").count() >= 1
        await page.screenshot(path=str(ARTIFACTS / "gateway-model-desktop.png"), full_page=True)
    finally:
        await page.close()


async def test_phone_sized_screen(site, browser):
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    try:
        await page.goto(site + "/")
        assert await page.locator("table.board tbody tr").count() == len(NAMES)
        assert await no_sideways_scroll(page)
        assert not await page.locator("th", has_text="Participant").is_visible()
        await page.screenshot(path=str(ARTIFACTS / "gateway-board-phone.png"), full_page=False)
        await page.goto(site + "/models/m_quasar")
        assert await page.locator("svg.chart").count() == 2 and await no_sideways_scroll(page)
        box = await page.locator("svg.chart").first.bounding_box()
        assert box is not None and box["width"] <= 390
        await page.screenshot(path=str(ARTIFACTS / "gateway-model-phone.png"), full_page=True)
        await page.goto(site + "/reputation")
        assert await page.locator("table.board tbody tr").count() == len(NAMES)
        await page.screenshot(path=str(ARTIFACTS / "gateway-reputation-phone.png"), full_page=False)
    finally:
        await context.close()


def test_seed_is_plausible():
    boards = published_rounds()
    assert len(boards) == ROUNDS and all(not math.isnan(r.score(Metric.CORR).value) for r in boards[-1].results)
