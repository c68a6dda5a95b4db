"""The payout wallets of the service, one per Bitcoin network, and where their keys and coins live.

Key material comes from ``CROWDQUANT_WALLET_SECRET`` (or ``CROWDQUANT_WALLET_SECRET_FILE``): a BIP39
mnemonic, a hex seed or an extended private key, held in memory only (``bitcoin.keys``). On the
default offline ``bitcoinlib_test`` network, when no secret is configured, a 24-word seed is generated
once and kept in ``<data dir>/payouts/wallet-seed`` (mode 0600); only the fact that it was generated is
logged, never the seed. Every other network refuses to build a payout without a configured secret.

bitcoinlib keeps the (watch-only) wallet in schema ``payouts_wallet`` of the service's own PostgreSQL
database (``CROWDQUANT_WALLET_DATABASE=postgres``, the default) or in a SQLite file under the data
folder (``sqlite``). bitcoinlib is synchronous and its session is not thread-safe, so every wallet
call runs on one dedicated worker thread, one at a time, off the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from services.payouts.settings import PayoutsSettings
from shared.errors import FailedPrecondition
from shared.logging import get_logger

if TYPE_CHECKING:
    from services.payouts.bitcoin import PayoutWallet

T = TypeVar("T")
TEST_NETWORK = "bitcoinlib_test"
WALLET_SCHEMA = "payouts_wallet"
log = get_logger("crowdquant.payouts.wallets")


def wallet_db_uri(database_url: str, schema: str = WALLET_SCHEMA) -> str:
    """The service's PostgreSQL URL as bitcoinlib's SQLAlchemy (psycopg2) URI, confined to ``schema``."""
    parts = urlsplit(database_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return parts._replace(scheme="postgresql+psycopg2", query=urlencode(query)).geturl()


def _read_or_create_seed(path: Path) -> str:
    """The generated test-network seed: created once with 0600 permissions, then always read back.

    Written whole to a temporary file first and then linked into place (which fails if another process
    got there first), so a crash never leaves an empty or partial seed behind.
    """
    from bitcoinlib.mnemonic import Mnemonic

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(Mnemonic().generate(strength=256) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name is durable before any wallet is created from it
        finally:
            os.close(directory)
        log.warning(
            "payout wallet seed generated for bitcoinlib_test; set CROWDQUANT_WALLET_SECRET for real networks",
            path=str(path),
        )
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text().strip()


class WalletBook:
    """Opens each network's wallet on first use and runs wallet calls on one worker thread."""

    def __init__(self, settings: PayoutsSettings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.data_dir = Path(settings.data_dir).resolve()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payout-wallet")
        self._wallets: dict[str, PayoutWallet] = {}
        self._open_lock = asyncio.Lock()

    def name(self, network: str) -> str:
        return f"{self.settings.wallet_name}-{network}"

    @property
    def storage(self) -> str:
        return self.settings.wallet_database

    def _db_uri(self) -> str:
        if self.settings.wallet_database == "sqlite":
            folder = self.data_dir / "payouts"
            folder.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{folder / 'wallet.sqlite'}"
        return wallet_db_uri(self.database_url)

    def _secret(self, network: str) -> str:
        if self.settings.wallet_secret is not None and self.settings.wallet_secret.get_secret_value().strip():
            return self.settings.wallet_secret.get_secret_value()
        if network != TEST_NETWORK:
            raise FailedPrecondition(
                f"CROWDQUANT_WALLET_SECRET is not set: paying on {network} needs the wallet's key material",
                reason="WALLET_SECRET_MISSING",
            )
        return _read_or_create_seed(self.data_dir / "payouts" / "wallet-seed")

    def _open(self, network: str) -> PayoutWallet:
        os.environ.setdefault("BCL_DATA_DIR", str(self.data_dir / "bitcoinlib"))
        from services.payouts.bitcoin import PayoutWallet

        # bitcoinlib's provider cache is only a cache: a SQLite file, so that every broadcast does not open
        # (and leave open) another PostgreSQL engine of its own.
        cache = self.data_dir / "payouts"
        cache.mkdir(parents=True, exist_ok=True)
        return PayoutWallet(
            secret=self._secret(network),
            db_uri=self._db_uri(),
            network=network,
            name=self.name(network),
            db_cache_uri=f"sqlite:///{cache / 'bitcoinlib-cache.sqlite'}",
        )

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def wallet(self, network: str) -> PayoutWallet:
        async with self._open_lock:
            if network not in self._wallets:
                self._wallets[network] = await self._call(lambda: self._open(network))
            return self._wallets[network]

    async def run(self, network: str, fn: Callable[[PayoutWallet], T]) -> T:
        """Run ``fn(wallet)`` on the wallet thread; calls never overlap."""
        wallet = await self.wallet(network)
        return await self._call(lambda: fn(wallet))

    async def close(self) -> None:
        for wallet in self._wallets.values():
            await self._call(wallet.close)
        self._wallets.clear()
        # bitcoinlib opens throw-away engines (e.g. to list wallets) that only a collection closes.
        await self._call(gc.collect)
        self._executor.shutdown(wait=False)
