"""The submissions service as its own process, with a round to upload to (memory and load tests).

A separate process so that its memory can be read from /proc (VmHWM, reset through clear_refs)
and so that a test's own clients do not share the server's event loop.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from crowdquant.cli.bootstrap import create_key
from crowdquant.cli.cluster import free_port
from crowdquant.cli.probe import check_health
from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from shared import db_roles
from shared.auth import Role
from shared.config import CommonSettings
from tests.support import bearer

#: The 2016 round's size: 24,048 validation and 12,024 live rows.
ROUND_2016 = pb.GeneratedDatasetSpec(
    seed=16, n_train=2000, n_validation=24048, n_live=12024, n_features=8, n_training_eras=10, n_tournament_eras=12
)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak since start or the last reset) of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> int:
    """Reset the process's peak RSS to its current RSS (Linux clear_refs 5); returns that RSS in kB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return memory_kb(pid)["VmRSS"]


@dataclass
class ServerProcess:
    database_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    port: int = 0
    operator: str = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        settings = CommonSettings()
        service_key = await create_key(
            settings, Role.SERVICE, "", "tests", [], url=self.database_url, service_name="submissions"
        )
        self.operator = await create_key(settings, Role.OPERATOR, "", "tests", [], url=self.database_url)
        self._spawn(service_key)
        assert self.proc is not None
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError(f"submissions exited; see {self.log_path}")
            if await check_health(self.address, timeout=1.0) == "SERVING":
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("submissions did not become SERVING within 60 s")

    def _spawn(self, service_key: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDQUANT_")}
        # its own role only, as in production (create_key above made the roles and migrated the schema)
        own_url = db_roles.derive_url(self.database_url, db_roles.login_role("submissions"))
        env.update(
            {
                "DATABASE_URL": own_url,
                "CROWDQUANT_SERVICE_API_KEY": service_key,
                "CROWDQUANT_SUBMISSIONS_PORT": str(self.port),
                "CROWDQUANT_GRPC_HOST": "127.0.0.1",
                "CROWDQUANT_NOTIFY_SCORING": "false",
                "CROWDQUANT_LOG_LEVEL": "warning",
                "CROWDQUANT_UPLOADS_PER_MINUTE": "100000",
                "CROWDQUANT_UPLOAD_BURST": "10000",
                "OPENBLAS_NUM_THREADS": "1",
                **self.env,
            }
        )
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crowdquant.cli.main", "serve", "submissions"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def participant(self, name: str) -> tuple[str, str]:
        """A new participant and one key of its own: (participant id, key)."""
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = id_grpc.IdentityServiceStub(channel)
            resp = await stub.CreateParticipant(
                id_pb.CreateParticipantRequest(request_id=f"p-{name}", display_name=name),
                metadata=bearer(self.operator),
            )
            participant_id = resp.participant.participant_id
        key = await create_key(CommonSettings(), Role.PARTICIPANT, participant_id, "tests", [], url=self.database_url)
        return participant_id, key

    async def open_round(self, tournament_id: str, spec: pb.GeneratedDatasetSpec = ROUND_2016) -> list[str]:
        """A tournament with one open generated round; returns the round's tournament row ids in order."""
        async with grpc.aio.insecure_channel(
            self.address, options=[("grpc.max_receive_message_length", 64 << 20)]
        ) as channel:
            stub = pb_grpc.SubmissionsServiceStub(channel)
            op = bearer(self.operator)
            await stub.CreateTournament(
                pb.CreateTournamentRequest(request_id=f"t-{tournament_id}", tournament_id=tournament_id, target_kind=1),
                metadata=op,
            )
            await stub.OpenRound(
                pb.OpenRoundRequest(request_id=f"o-{tournament_id}", tournament_id=tournament_id, generated=spec),
                metadata=op,
            )
            ids: list[str] = []
            ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=1)
            request = pb.DownloadRoundDataRequest(
                round=ref, splits=[common_pb2.SPLIT_VALIDATION, common_pb2.SPLIT_LIVE]
            )
            async for message in stub.DownloadRoundData(request, metadata=op):
                if message.WhichOneof("kind") == "chunk":
                    ids += message.chunk.ids.decode().split("\n")
            return ids

    async def model(self, key: str, tournament_id: str, name: str) -> str:
        from tests.integration.submissions.conftest import blt_address

        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = pb_grpc.SubmissionsServiceStub(channel)
            resp = await stub.CreateModel(
                pb.CreateModelRequest(
                    request_id=f"m-{name}",
                    tournament_id=tournament_id,
                    display_name=name,
                    payout_address=blt_address(3),
                ),
                metadata=bearer(key),
            )
            return resp.model.model_id
