"""The payouts service: stakes, allocations, Bitcoin batches, and the ledger with its audit API."""

from __future__ import annotations

from pathlib import Path

import grpc

from crowdquant.payouts.v1 import (
    ledger_audit_service_pb2,
    ledger_audit_service_pb2_grpc,
    payouts_service_pb2,
    payouts_service_pb2_grpc,
)
from services.payouts.access import LEDGER_AUDIT, PAYOUTS
from shared.rpc import remote_auth
from shared.rpc.server import ServiceContext, ServiceSpec

SCHEMA = "payouts"
SERVICE = payouts_service_pb2.DESCRIPTOR.services_by_name["PayoutsService"].full_name
AUDIT_SERVICE = ledger_audit_service_pb2.DESCRIPTOR.services_by_name["LedgerAuditService"].full_name


async def register(server: grpc.aio.Server, ctx: ServiceContext):
    payouts_service_pb2_grpc.add_PayoutsServiceServicer_to_server(
        payouts_service_pb2_grpc.PayoutsServiceServicer(), server
    )
    ledger_audit_service_pb2_grpc.add_LedgerAuditServiceServicer_to_server(
        ledger_audit_service_pb2_grpc.LedgerAuditServiceServicer(), server
    )
    ctx.policy.add(SERVICE, PAYOUTS)
    ctx.policy.add(AUDIT_SERVICE, LEDGER_AUDIT)
    return [SERVICE, AUDIT_SERVICE], remote_auth.attach(ctx)


SPEC = ServiceSpec(name="payouts", schema=SCHEMA, migrations=Path(__file__).parent / "migrations",
                   register=register)
