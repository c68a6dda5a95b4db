"""The payouts service: stakes, allocations, Bitcoin batches, and the ledger with its audit API.

Configuration (environment, see ``settings.py``): ``CROWDQUANT_WALLET_SECRET`` (or ``..._FILE``) is the
payout wallet's key material, never logged; unset on the default offline ``bitcoinlib_test`` network, a
seed is generated once into ``<CROWDQUANT_DATA_DIR>/payouts/wallet-seed`` (mode 0600) and only that
fact is logged. bitcoinlib's wallet database lives in schema ``payouts_wallet`` of the service's
database (``CROWDQUANT_WALLET_DATABASE=sqlite`` puts it under the data folder instead). Fee rate
(``CROWDQUANT_FEE_RATE_SAT_VB``, clamped to ``CROWDQUANT_FEE_RATE_CEILING_SAT_VB``) and outputs per
transaction (``CROWDQUANT_MAX_OUTPUTS_PER_BATCH``) have request overrides. The network of a payout is
its tournament's (bitcoinlib_test unless the tournament says testnet, regtest or mainnet, which need a
secret and a reachable provider).

The service logs in as the database role ``cq_payouts``, whose only membership is ``crowdquant_app``:
it may append to the ledger but never change or delete an entry. On start it resumes every unfinished
batch in the background (re-broadcasting stored transactions, never rebuilding them).
``CROWDQUANT_FAULT_POINTS`` (crash tests only, see ``faults.py``) makes it kill itself at a named state
change.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from crowdquant.payouts.v1 import (
    ledger_audit_service_pb2,
    ledger_audit_service_pb2_grpc,
    payouts_service_pb2,
    payouts_service_pb2_grpc,
)
from services.payouts import faults
from services.payouts.api.access import LEDGER_AUDIT, LEDGER_AUDIT_SCOPES, PAYOUTS, PAYOUTS_SCOPES
from services.payouts.api.audit import LedgerAuditServicer
from services.payouts.api.payouts import PayoutsServicer
from services.payouts.bitcoin.wallets import WALLET_SCHEMA, WalletBook
from services.payouts.ledger import APP_ROLE
from services.payouts.peers import Peers
from services.payouts.settings import PayoutsSettings
from services.payouts.usecases.batches import BatchEngine
from services.payouts.usecases.settlement import RoundSettler
from shared.logging import get_logger
from shared.rpc import remote_auth
from shared.rpc.server import ServiceContext, ServiceSpec

SCHEMA = "payouts"
SERVICE = payouts_service_pb2.DESCRIPTOR.services_by_name["PayoutsService"].full_name
AUDIT_SERVICE = ledger_audit_service_pb2.DESCRIPTOR.services_by_name["LedgerAuditService"].full_name
RECOVERY_DELAY_SECONDS = 1.0
log = get_logger("crowdquant.payouts")


async def _recover_in_background(engine: BatchEngine, attempts: int) -> None:
    """Resume unfinished batches; peers may still be starting, so retry a bounded number of times."""
    for attempt in range(1, attempts + 1):
        try:
            recovered = await engine.recover()
            if recovered:
                log.info("batches recovered", count=len(recovered))
            return
        except Exception as exc:  # a background task must not die silently: log, wait, try again
            log.warning("recovery not finished", attempt=attempt, error=f"{type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(RECOVERY_DELAY_SECONDS * min(attempt, 10))
    log.error("recovery gave up; call RecoverBatches", attempts=attempts)


async def register(server: grpc.aio.Server, ctx: ServiceContext):
    faults.configure()
    settings = ctx.settings
    assert isinstance(settings, PayoutsSettings)
    peers = Peers(settings)
    wallets = WalletBook(settings, ctx.database.url)
    settler = RoundSettler(ctx.database, peers)
    engine = BatchEngine(ctx.database, wallets, settler, settings)
    payouts_service_pb2_grpc.add_PayoutsServiceServicer_to_server(
        PayoutsServicer(ctx.database, peers, wallets, engine, settler, settings), server
    )
    ledger_audit_service_pb2_grpc.add_LedgerAuditServiceServicer_to_server(LedgerAuditServicer(ctx.database), server)
    ctx.extras.update(peers=peers, wallets=wallets, engine=engine)
    tasks: list[asyncio.Task[None]] = []

    async def start_recovery() -> None:
        tasks.append(
            asyncio.create_task(_recover_in_background(engine, settings.recovery_attempts), name="payouts-recovery")
        )

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await peers.close()
        await wallets.close()

    ctx.on_ready.append(start_recovery)
    ctx.on_stop.append(stop)
    ctx.policy.add(SERVICE, PAYOUTS, PAYOUTS_SCOPES)
    ctx.policy.add(AUDIT_SERVICE, LEDGER_AUDIT, LEDGER_AUDIT_SCOPES)
    return [SERVICE, AUDIT_SERVICE], remote_auth.attach(ctx)


SPEC = ServiceSpec(
    name="payouts",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "store" / "migrations",
    register=register,
    login_groups=(APP_ROLE,),
    other_schemas=(WALLET_SCHEMA,),
)
