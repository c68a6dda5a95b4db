"""The platform's payout wallet: a watch-only bitcoinlib wallet for coins and addresses, keys in memory.

bitcoinlib keeps the wallet's keys (public only, see ``keys.py``), coins and broadcast transactions in
its database, whose URI is a parameter: a SQLite file for tests, the service's Postgres in production
(``postgresql+psycopg2://...``; bitcoinlib is synchronous, so call this from a worker thread).

Nothing here decides who is paid: the caller passes payments and a fee rate; this module chooses coins
(``domain.coins``), builds and signs one transaction (``transactions``), broadcasts it and records in
the wallet database which coins it spent and which change it created. Building does not touch the
coin set, so a transaction that is built but never stored as SIGNED leaves nothing behind; coins of
transactions stored as SIGNED but not yet broadcast must be passed in ``exclude`` by the caller.

On ``bitcoinlib_test`` everything is offline: ``fund_test_wallet`` makes coins out of thin air
(bitcoinlib's ``utxos_update``), broadcast is simulated, and ``mark_confirmed`` plays the miner.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from bitcoinlib.db import DbKey, DbTransaction, DbTransactionInput, DbTransactionOutput
from bitcoinlib.keys import HDKey
from bitcoinlib.services.services import Service
from bitcoinlib.wallets import Wallet, wallet_delete, wallet_exists

from services.payouts.bitcoin.keys import WITNESS_TYPE, AccountKeys
from services.payouts.bitcoin.transactions import (
    RBF_SEQUENCE,
    TX_VERSION,
    SignedTransaction,
    SpentInput,
    sign_transaction,
)
from services.payouts.domain.batching import DUST_LIMITS, MAX_OUTPUTS_PER_TRANSACTION
from services.payouts.domain.coins import Coin, plan_fee_bump, select_coins
from shared.bitcoin_address import DEFAULT_NETWORK, Destination, decode_address, get_network
from shared.errors import FailedPrecondition, InvalidArgument, Unavailable
from shared.money import require_satoshis

DEFAULT_WALLET_NAME = "crowdquant-payouts"
TEST_NETWORK = "bitcoinlib_test"
_ALREADY_KNOWN = ("already in block chain", "already known", "txn-already-in-mempool", "already-known")


def _key_path(path: str) -> tuple[int, int]:
    """(change, index) from a bitcoinlib key path such as 'M/0/7' (watch-only wallet, account level)."""
    parts = path.split("/")
    return int(parts[-2]), int(parts[-1])


class PayoutWallet:
    """Open (or create on first use) the platform wallet named ``name`` in the database at ``db_uri``.

    The secret must be the one the wallet was created from; otherwise opening fails with
    FailedPrecondition instead of signing with keys that own none of the coins.
    """

    def __init__(
        self,
        *,
        secret: str,
        db_uri: str,
        network: str = DEFAULT_NETWORK,
        name: str = DEFAULT_WALLET_NAME,
        db_cache_uri: str | None = None,
    ) -> None:
        self.network = get_network(network)
        self.name = name
        self._keys = AccountKeys(secret, self.network)
        account_public = self._keys.public_account_key()
        wallet = Wallet(name, db_uri=db_uri, db_cache_uri=db_cache_uri) if wallet_exists(name, db_uri=db_uri) else None
        if wallet is not None and wallet.main_key is None:
            # bitcoinlib commits a new wallet's row before its main key: a crash in between leaves a
            # wallet without keys, addresses or coins. Nothing can be lost by making it again.
            wallet.__exit__(None, None, None)
            wallet_delete(name, db_uri=db_uri, force=True)
            wallet = None
        if wallet is None:
            wallet = Wallet.create(
                name,
                keys=account_public,
                network=self.network.bitcoinlib_name,
                witness_type=WITNESS_TYPE,
                db_uri=db_uri,
                db_cache_uri=db_cache_uri,
            )
        elif wallet.network.name != self.network.bitcoinlib_name:
            raise FailedPrecondition(
                f"wallet {name!r} in the wallet database is on {wallet.network.name}, not "
                f"{self.network.name}; use another wallet name for this network",
                reason="WALLET_MISMATCH",
            )
        elif wallet.main_key.wif != account_public.wif():
            raise FailedPrecondition(
                f"wallet {name!r} in the wallet database was created from a different secret; "
                "configure the secret it was created with, or a new wallet name after a rotation",
                reason="WALLET_MISMATCH",
            )
        self._wallet = wallet

    def __repr__(self) -> str:
        return f"PayoutWallet(name={self.name!r}, network={self.network.name!r})"

    def close(self) -> None:
        """Release the wallet's database session and its connections (bitcoinlib's own context exit)."""
        self._wallet.__exit__(None, None, None)

    # --- coins and addresses -------------------------------------------------------------------

    def receive_address(self) -> str:
        """An address of the platform wallet for funding it (the first unused one)."""
        return self._wallet.get_key().address

    def coins(self, *, min_confirms: int = 1, exclude: Collection[tuple[str, int]] = ()) -> list[Coin]:
        """Unspent coins with at least ``min_confirms`` confirmations, minus the ``exclude`` outpoints.

        Spending only confirmed coins by default avoids chains of unconfirmed payouts, in which replacing
        (fee-bumping) one batch would invalidate the next (and see bitcoinlib #186).
        """
        excluded = set(exclude)
        return [
            Coin(u["txid"], u["output_n"], u["value"])
            for u in self._wallet.utxos(network=self.network.bitcoinlib_name, min_confirms=min_confirms)
            if (u["txid"], u["output_n"]) not in excluded
        ]

    def received_outputs(self) -> list[Coin]:
        """Every output ever paid to one of the wallet's keys (spent or not, change included).

        The service books each coin that entered the wallet once in its ledger, keyed by outpoint, so
        the ledger's wallet account can always be compared with, and brought back in line with, the
        coins (the caller leaves out the change of its own payout transactions).
        """
        session = self._wallet.session
        rows = (
            session.query(DbTransactionOutput, DbTransaction)
            .join(DbTransaction)
            .filter(DbTransaction.wallet_id == self._wallet.wallet_id, DbTransactionOutput.key_id.isnot(None))
            .all()
        )
        return [Coin(t.txid.hex(), o.output_n, o.value) for o, t in rows]

    def balance(self, *, min_confirms: int = 0) -> int:
        """Satoshis in unspent coins (unconfirmed change included by default)."""
        return sum(c.value for c in self.coins(min_confirms=min_confirms))

    def fund_test_wallet(self, addresses: int = 1) -> int:
        """bitcoinlib_test only: create coins (two of 1 BTC per new address); return the satoshis added."""
        if self.network.name != TEST_NETWORK:
            raise FailedPrecondition(
                f"test funding only exists on {TEST_NETWORK}; on {self.network.name} send coins to "
                f"{self.receive_address()}",
                reason="NOT_TEST_NETWORK",
            )
        before = self.balance()
        for _ in range(addresses):
            key = self._wallet.new_key()
            self._wallet.utxos_update(key_id=key.key_id)
        return self.balance() - before

    # --- building ------------------------------------------------------------------------------

    def _spent_input(self, coin: Coin, key_paths: dict[str, tuple[str, tuple[int, int]]]) -> SpentInput:
        address, path = key_paths[f"{coin.txid}:{coin.vout}"]
        return SpentInput(coin.txid, coin.vout, coin.value, address, path)

    def _signing_inputs(self, spent: Sequence[SpentInput]) -> list[tuple[SpentInput, HDKey]]:
        pairs = []
        for item in spent:
            key = self._keys.signing_key(*item.key_path)
            if key.address() != item.address:
                raise FailedPrecondition(
                    f"coin {item.txid}:{item.vout} is not at the address its key path derives; the wallet "
                    "database does not match the configured secret",
                    reason="WALLET_MISMATCH",
                )
            pairs.append((item, key))
        return pairs

    def _coin_keys(self) -> dict[str, tuple[str, tuple[int, int]]]:
        """outpoint -> (address, key path) for every unspent coin of the wallet."""
        paths = {
            k.id: (k.address, _key_path(k.path))
            for k in self._wallet.session.query(DbKey).filter_by(wallet_id=self._wallet.wallet_id)
            if k.depth == self._wallet.key_depth
        }
        return {
            f"{u['txid']}:{u['output_n']}": paths[u["key_id"]]
            for u in self._wallet.utxos(network=self.network.bitcoinlib_name)
        }

    def _destinations(self, payments: Sequence[tuple[str, int]]) -> list[tuple[Destination, int]]:
        if not payments:
            raise InvalidArgument("a batch needs at least one payment", metadata={"field": "payments"})
        if len(payments) > MAX_OUTPUTS_PER_TRANSACTION:
            raise InvalidArgument(
                f"{len(payments)} payments is more than {MAX_OUTPUTS_PER_TRANSACTION} per transaction; "
                "plan the batch with domain.batching.plan_batches",
                metadata={"field": "payments"},
            )
        out = []
        for n, (address, amount) in enumerate(payments):
            destination = decode_address(address, self.network.name)
            sats = require_satoshis(amount, f"amount of payment #{n} ({address})", allow_zero=False)
            if sats < DUST_LIMITS[destination.output_type]:
                raise InvalidArgument(
                    f"payment #{n} of {sats} sat to {address} is below the {destination.output_type} dust "
                    f"limit of {DUST_LIMITS[destination.output_type]} sat; hold it for a later batch",
                    metadata={"field": f"payments[{n}]"},
                )
            out.append((destination, sats))
        return out

    def build_batch(
        self,
        payments: Sequence[tuple[str, int]],
        fee_rate: int,
        *,
        min_confirms: int = 1,
        exclude: Collection[tuple[str, int]] = (),
    ) -> SignedTransaction:
        """Build and sign one transaction paying ``payments`` [(address, satoshis)] at ``fee_rate`` sat/vB.

        The platform pays the fee; change returns to a fresh change address of the wallet. Output i pays
        payments[i] (see ``SignedTransaction.payees``), the change comes last. The fee is the rate times
        an upper bound of the size, so the real rate is never below the one asked. Nothing is recorded:
        store the result, then ``broadcast`` it.
        """
        rate = require_satoshis(fee_rate, "fee rate (sat/vB)", allow_zero=False)
        destinations = self._destinations(payments)
        selection = select_coins(
            self.coins(min_confirms=min_confirms, exclude=exclude),
            [d.output_type for d, _ in destinations],
            sum(a for _, a in destinations),
            rate,
        )
        key_paths = self._coin_keys()
        spent = [self._spent_input(c, key_paths) for c in selection.coins]
        change = (self._wallet.new_key_change().address, selection.change) if selection.change else None
        return sign_transaction(
            network=self.network.name,
            bitcoinlib_network=self.network.bitcoinlib_name,
            inputs=self._signing_inputs(spent),
            payees=destinations,
            change=change,
        )

    def bump_fee(self, previous: SignedTransaction, fee_rate: int) -> SignedTransaction:
        """A replacement (BIP125) of ``previous``: same inputs, same payees, higher fee, less change.

        Spending exactly the same inputs makes every version conflict with every other, so whichever
        confirms, the payees are paid once. Store the replacement before broadcasting it, like the first.
        """
        rate = require_satoshis(fee_rate, "fee rate (sat/vB)", allow_zero=False)
        if previous.network != self.network.name:
            raise InvalidArgument(
                f"transaction {previous.txid} is on {previous.network}, not {self.network.name}",
                metadata={"field": "network"},
            )
        destinations = [(decode_address(p.address, self.network.name), p.amount) for p in previous.payees]
        plan = plan_fee_bump(
            input_count=len(previous.inputs),
            input_total=previous.input_total,
            payment_types=[d.output_type for d, _ in destinations],
            payment_total=previous.payee_total,
            old_fee=previous.fee,
            old_vsize=previous.vsize,
            new_fee_rate=rate,
        )
        change = None
        if plan.change:
            change = (previous.change_address or self._wallet.new_key_change().address, plan.change)
        return sign_transaction(
            network=self.network.name,
            bitcoinlib_network=self.network.bitcoinlib_name,
            inputs=self._signing_inputs(previous.inputs),
            payees=destinations,
            change=change,
        )

    # --- broadcast and confirmation ---------------------------------------------------------------

    def broadcast(self, tx: SignedTransaction) -> str:
        """Send the stored bytes to the network and record the spent coins and the change; return the txid.

        Safe to repeat with the same transaction (a re-broadcast after a crash): a node that already has
        it is not an error, and the wallet database records it once. Recording a replacement removes the
        versions it replaces from the wallet database.
        """
        if tx.network != self.network.name:
            raise InvalidArgument(
                f"transaction {tx.txid} is on {tx.network}, not {self.network.name}",
                metadata={"field": "network"},
            )
        self._refuse_spent_inputs(tx)
        service = Service(network=self.network.bitcoinlib_name, cache_uri=self._wallet.db_cache_uri)
        result = service.sendrawtransaction(tx.raw_hex)
        if not result:
            errors = "; ".join(str(e) for e in (service.errors or {}).values())
            if not any(marker in errors.lower() for marker in _ALREADY_KNOWN):
                raise Unavailable(
                    f"no provider accepted transaction {tx.txid}: {errors or 'no answer'}",
                    metadata={"txid": tx.txid},
                )
        # bitcoinlib_test answers with the hash of the full serialization (the wtxid) as 'txid'; the
        # real txid is the one computed from the bytes, so the answer is not used.
        try:
            self._record(tx)
        except Exception:
            self._wallet.session.rollback()  # all or nothing: a re-broadcast records it again
            raise
        return tx.txid

    def _refuse_spent_inputs(self, tx: SignedTransaction) -> None:
        """Refuse to broadcast a transaction whose coins a confirmed transaction already spent.

        The real network would reject it anyway; the simulated one would not, and the batch must then
        fail (and its payments be voided) rather than pretend to pay twice from the same coins.
        """
        session = self._wallet.session
        for item in tx.inputs:
            spender = (
                session.query(DbTransaction)
                .join(DbTransactionInput)
                .filter(
                    DbTransaction.wallet_id == self._wallet.wallet_id,
                    DbTransactionInput.prev_txid == bytes.fromhex(item.txid),
                    DbTransactionInput.output_n == item.vout,
                    DbTransaction.txid != bytes.fromhex(tx.txid),
                    DbTransaction.confirmations > 0,
                )
                .first()
            )
            if spender is not None:
                raise FailedPrecondition(
                    f"coin {item.txid}:{item.vout} of transaction {tx.txid} is already spent by confirmed "
                    f"transaction {spender.txid.hex()}; this transaction can never confirm",
                    reason="INPUTS_SPENT",
                    metadata={"txid": tx.txid, "spent_by": spender.txid.hex()},
                )

    def _record(self, tx: SignedTransaction) -> None:
        session = self._wallet.session
        wallet_id = self._wallet.wallet_id
        txid = bytes.fromhex(tx.txid)
        if session.query(DbTransaction).filter_by(wallet_id=wallet_id, txid=txid).first():
            return
        for item in tx.inputs:
            conflicts = (
                session.query(DbTransactionInput)
                .join(DbTransaction)
                .filter(
                    DbTransaction.wallet_id == wallet_id,
                    DbTransactionInput.prev_txid == bytes.fromhex(item.txid),
                    DbTransactionInput.output_n == item.vout,
                )
                .all()
            )
            for conflict in conflicts:  # an earlier version of this batch, replaced by this one
                session.delete(conflict.transaction)
        session.flush()
        record = DbTransaction(
            wallet_id=wallet_id,
            txid=txid,
            account_id=self._wallet.default_account_id,
            witness_type="segwit",
            version=TX_VERSION,
            locktime=0,
            date=datetime.now(UTC),
            confirmations=0,
            status="unconfirmed",
            size=len(tx.raw_hex) // 2,
            fee=tx.fee,
            input_total=tx.input_total,
            output_total=tx.input_total - tx.fee,
            network_name=self.network.bitcoinlib_name,
            raw=bytes.fromhex(tx.raw_hex),
            verified=True,
            is_complete=True,
        )
        session.add(record)
        session.flush()
        keys_by_address = {
            k.address: k.id
            for k in session.query(DbKey).filter_by(wallet_id=wallet_id)
            if k.address in {i.address for i in tx.inputs} | {tx.change_address}
        }
        for index, item in enumerate(tx.inputs):
            session.add(
                DbTransactionInput(
                    transaction_id=record.id,
                    index_n=index,
                    key_id=keys_by_address.get(item.address),
                    address=item.address,
                    witness_type="segwit",
                    prev_txid=bytes.fromhex(item.txid),
                    output_n=item.vout,
                    script_type="sig_pubkey",
                    sequence=RBF_SEQUENCE,
                    value=item.value,
                )
            )
            spent_outputs = (
                session.query(DbTransactionOutput)
                .join(DbTransaction)
                .filter(
                    DbTransaction.wallet_id == wallet_id,
                    DbTransaction.txid == bytes.fromhex(item.txid),
                    DbTransactionOutput.output_n == item.vout,
                )
                .all()
            )
            for output in spent_outputs:
                output.spent = True
                output.spending_txid = txid
                output.spending_index_n = index
        if tx.change_vout is not None and tx.change_address:
            change = decode_address(tx.change_address, self.network.name)
            session.add(
                DbTransactionOutput(
                    transaction_id=record.id,
                    output_n=tx.change_vout,
                    key_id=keys_by_address.get(tx.change_address),
                    address=tx.change_address,
                    script=change.script_pubkey,
                    script_type="p2wpkh",
                    value=tx.change_amount,
                    spent=False,
                    is_change=True,
                )
            )
        session.commit()

    def mark_confirmed(self, txid: str, confirmations: int = 1) -> None:
        """bitcoinlib_test only: play the miner, so the batch can complete and its change be spent."""
        if self.network.name != TEST_NETWORK:
            raise FailedPrecondition(f"confirmations are simulated only on {TEST_NETWORK}", reason="NOT_TEST_NETWORK")
        record = self._record_of(txid)
        record.confirmations = confirmations
        record.status = "confirmed"
        self._wallet.session.commit()

    def confirmations(self, txid: str) -> int:
        """Confirmations of a broadcast transaction: from the wallet database on bitcoinlib_test, from the
        network's providers elsewhere (stored back in the wallet database)."""
        record = self._record_of(txid)
        if self.network.name != TEST_NETWORK:
            service = Service(network=self.network.bitcoinlib_name, cache_uri=self._wallet.db_cache_uri)
            found = service.gettransaction(txid)
            if not found:
                raise Unavailable(f"no provider knows transaction {txid} yet", metadata={"txid": txid})
            record.confirmations = found.confirmations or 0
            record.status = "confirmed" if record.confirmations else "unconfirmed"
            self._wallet.session.commit()
        return int(record.confirmations or 0)

    def _record_of(self, txid: str) -> DbTransaction:
        record = (
            self._wallet.session.query(DbTransaction)
            .filter_by(wallet_id=self._wallet.wallet_id, txid=bytes.fromhex(txid))
            .first()
        )
        if record is None:
            raise FailedPrecondition(
                f"transaction {txid} was never broadcast from wallet {self.name!r}",
                reason="UNKNOWN_TRANSACTION",
                metadata={"txid": txid},
            )
        return record
