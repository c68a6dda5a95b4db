"""TLS for gRPC from certificate files: a self-signed certificate made here, real servers."""

from __future__ import annotations

import grpc
import pytest

from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as pb_grpc
from shared.rpc.client import use_tls
from tests.integration.conftest import md
from tests.support import self_signed_certificate, start_services, stop_services


async def test_services_speak_tls_only_and_authenticate_each_other_over_it(database_url, keys, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    tls = {"tls_cert_file": cert, "tls_key_file": key, "tls_ca_file": cert}
    running = await start_services(
        database_url, keys.services, names=["submissions", "scoring"], submissions=tls, scoring=tls
    )
    try:
        credentials = grpc.ssl_channel_credentials(cert.read_bytes())
        async with grpc.aio.secure_channel(running["submissions"].address, credentials) as channel:
            listed = await pb_grpc.IdentityServiceStub(channel).ListParticipants(
                pb.ListParticipantsRequest(), metadata=md(keys.operator)
            )
            assert listed.participants
        # scoring checks the caller's key with submissions over TLS
        async with grpc.aio.secure_channel(running["scoring"].address, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await sc_grpc.ScoringServiceStub(channel).GetScoringRun(
                    sc_pb.GetScoringRunRequest(run_id="r_x"), metadata=md(keys.operator)
                )
            assert info.value.code() == grpc.StatusCode.NOT_FOUND  # authenticated, then not found
        # a plaintext client can't talk to a TLS server
        async with grpc.aio.insecure_channel(running["submissions"].address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.IdentityServiceStub(channel).ListParticipants(
                    pb.ListParticipantsRequest(), metadata=md(keys.operator), timeout=5
                )
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await stop_services(running)
        use_tls(None)
