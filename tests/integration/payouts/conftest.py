"""Fixtures of the payouts tests: the four real services (payouts with its data folder in a temp dir),
stubs for every caller, and an independent (embit) decoder of the transactions payouts broadcasts."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from crowdquant.cli.bootstrap import create_service_keys
from crowdquant.payouts.v1 import ledger_audit_service_pb2_grpc as audit_grpc
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc
from shared.config import CommonSettings
from shared.rpc.server import RunningService
from tests.integration.payouts.scenario import Stubs, stubs_on
from tests.support import start_services, stop_services


@pytest_asyncio.fixture(scope="module")
async def services(database_url: str, tmp_path_factory) -> AsyncIterator[dict[str, RunningService]]:
    """Overrides the shared fixture: payouts keeps its generated wallet seed in a temporary data folder."""
    data_dir = tmp_path_factory.mktemp("payouts-data")
    service_keys = await create_service_keys(CommonSettings(), "tests", url=database_url)
    running = await start_services(database_url, service_keys, payouts={"data_dir": data_dir})
    for svc in running.values():
        svc.ctx.extras["service_keys"] = service_keys
    yield running
    await stop_services(running)


@pytest_asyncio.fixture(scope="module")
async def channels(services) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    opened = {name: grpc.aio.insecure_channel(svc.address) for name, svc in services.items()}
    yield opened
    for channel in opened.values():
        await channel.close()


@pytest.fixture(scope="module")
def stubs(channels, keys, database_url) -> Stubs:
    return stubs_on(channels, keys.operator, database_url)


@pytest.fixture(scope="module")
def payouts(channels) -> po_grpc.PayoutsServiceStub:
    return po_grpc.PayoutsServiceStub(channels["payouts"])


@pytest.fixture(scope="module")
def audit(channels) -> audit_grpc.LedgerAuditServiceStub:
    return audit_grpc.LedgerAuditServiceStub(channels["payouts"])


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()
