"""A real PostgreSQL started from the ``pgserver`` wheel when ``DATABASE_URL`` is unset.

All services of one machine share one server in one data folder: the first process starts it, the
others attach (pgserver coordinates through a lock file). The server keeps running after the
process exits so a restarted service finds its data; ``crowdquant db stop`` stops it.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DEFAULT_DATABASE = "crowdquant"


def start(data_dir: Path) -> str:
    """Start (or attach to) the embedded server; return a ``postgresql://`` URI of its server."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    return server.get_uri()


def stop(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; return whether it did."""
    from pgserver import _commands

    pgdata = (data_dir / "pg").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)  # type: ignore[attr-defined]
    except subprocess.CalledProcessError:
        return False
    return True


def with_database(uri: str, database: str) -> str:
    """Return ``uri`` pointing at another database of the same server."""
    parts = urlsplit(uri)
    return parts._replace(path=f"/{database}").geturl()


def socket_dir(uri: str) -> str | None:
    return parse_qs(urlsplit(uri).query).get("host", [None])[0]
