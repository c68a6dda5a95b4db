"""Test and benchmark harness: a real PostgreSQL, fresh databases, real gRPC servers on loopback.

Used by ``tests/conftest.py`` and the ``bench/`` scripts. Nothing here fakes a part of the system:
databases are real PostgreSQL databases and services are the production servers on free ports.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import asyncpg

from services.registry import SERVICES, load
from shared import embedded_pg
from shared.config import load_settings
from shared.db import admin_access, ensure_database, to_plain_url
from shared.rpc.server import RunningService, start_service


class PostgresForTests:
    """``DATABASE_URL``'s server when set, else an embedded server in a temporary folder."""

    def __init__(self) -> None:
        self._server: Any = None
        self._tmp: str | None = None
        external = os.environ.get("DATABASE_URL")
        if external:
            self.url = to_plain_url(external)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver

                self._tmp = tempfile.mkdtemp(prefix="cqpg")
                self._server = pgserver.get_server(Path(self._tmp) / "pg", cleanup_mode="delete")
            self.url = embedded_pg.with_database(self._server.get_uri(), "postgres")

    async def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{secrets.token_hex(5)}"
        url = embedded_pg.with_database(self.url, name)
        await ensure_database(url)
        return url

    async def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        conn = await asyncpg.connect(embedded_pg.with_database(self.url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.cleanup()


async def start_services(
    database_url: str, service_keys: Mapping[str, str], names: Iterable[str] = SERVICES, **overrides: Any
) -> dict[str, RunningService]:
    """Start real servers in this process on free loopback ports, wired to each other.

    Each service calls its peers with its own key, ``service_keys[name]`` (``create_service_keys``).
    ``database_url`` is an administrator's: each service makes the roles, migrates its schema as the
    migration role and then logs in as its own role, as in development (``shared.db.admin_access``).
    """
    names = [n for n in SERVICES if n in set(names)]
    running: dict[str, RunningService] = {}
    for name in names:
        spec, cls = load(name)
        peers = {f"{other}_addr": svc.address for other, svc in running.items()}
        settings = load_settings(
            cls,
            port=0,
            grpc_host="127.0.0.1",
            service_api_key=service_keys[name],
            health_interval_seconds=0.5,
            grace_seconds=0.5,
            **{**peers, **overrides.get(name, {})},
        )
        running[name] = await start_service(spec, settings, admin_access(database_url, name))
    for name, service in running.items():
        for other in running.values():
            setattr(other.ctx.settings, f"{name}_addr", service.address)
    for name in names:
        await running[name].check_once()
    return running


async def stop_services(running: dict[str, RunningService]) -> None:
    for service in running.values():
        await service.stop(grace=0.2)


class TcpProxy:
    """A loopback TCP proxy to the test database that can be cut and restored (fault tests).

    Cutting it closes every open connection and refuses new ones, as a stopped server would.
    """

    def __init__(self, target_url: str) -> None:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(target_url)
        self._socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 5432
        self._target_url = target_url
        self._server: Any = None
        self._writers: set[Any] = set()
        self.port = 0

    def url(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self._target_url)
        netloc = f"{parts.username or 'postgres'}:{parts.password or ''}@127.0.0.1:{self.port}"
        return parts._replace(netloc=netloc, query="").geturl()

    async def _open_target(self) -> tuple[Any, Any]:
        import asyncio

        if self._socket_dir:
            return await asyncio.open_unix_connection(f"{self._socket_dir}/.s.PGSQL.{self._port}")
        return await asyncio.open_connection(self._host, self._port)

    async def _handle(self, reader: Any, writer: Any) -> None:
        import asyncio

        try:
            t_reader, t_writer = await self._open_target()
        except OSError:
            writer.close()
            return
        self._writers.update({writer, t_writer})

        async def pipe(src: Any, dst: Any) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, t_writer), pipe(t_reader, writer))
        self._writers.difference_update({writer, t_writer})

    async def start(self) -> None:
        import asyncio

        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()


async def table_checksums(database_url: str, schemas: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every table of ``schemas`` ("nothing changed" checks)."""
    conn = await asyncpg.connect(to_plain_url(database_url))
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
            list(schemas),
        )
        out: dict[str, tuple[int, str]] = {}
        for t in tables:
            name = f'"{t["table_schema"]}"."{t["table_name"]}"'
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') AS h "
                f"FROM {name} x"
            )
            out[name] = (row["n"], row["h"])
        return out
    finally:
        await conn.close()


def self_signed_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway CA-less certificate for ``host`` (and localhost): (cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crowdquant test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def bearer(key: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying an API key (none for an anonymous call)."""
    return (("authorization", f"Bearer {key}"),) if key else ()


def upload_stream(header: Any, ids: Any, values: Any, chunk_rows: int = 8192) -> Any:
    """An UploadPredictions request stream: the header, then packed chunks of ids and float32 values."""
    import numpy as np

    from crowdquant.submissions.v1 import submissions_service_pb2 as pb

    async def stream() -> Any:
        yield pb.UploadPredictionsRequest(header=header)
        for start in range(0, len(ids), chunk_rows):
            yield pb.UploadPredictionsRequest(
                chunk=pb.PredictionsChunk(
                    ids="\n".join(ids[start : start + chunk_rows]).encode(),
                    values=np.asarray(values[start : start + chunk_rows], dtype="<f4").tobytes(),
                )
            )

    return stream()
