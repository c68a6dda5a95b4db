"""Booking coins that enter the payout wallet, so its ledger account always matches its UTXOs.

Every output the wallet ever received, except the change of the service's own payout transactions,
is booked once as ``wallet.funding`` (debit ``platform:wallet:{network}``, credit
``platform:funding:{network}``) with an entry id derived from its outpoint. Funding the test wallet
and booking it are two steps that a crash can separate; because booking is keyed by outpoint and
re-run at start-up and before every batch is signed or confirmed, a coin is never missed nor booked
twice.
"""

from __future__ import annotations

from services.payouts import ledger
from services.payouts.bitcoin.wallets import WalletBook
from services.payouts.domain import chart, ids
from services.payouts.store import batches as batch_repo
from services.payouts.store.uow import unit_of_work
from shared.db import Database


async def sync_funding(database: Database, wallets: WalletBook, network: str) -> int:
    """Book the wallet's coins the ledger does not know yet; return the satoshis newly booked."""
    received = await wallets.run(network, lambda w: w.received_outputs())
    async with unit_of_work(database) as conn:
        own = {row.txid for row in await batch_repo.transactions(conn)}
        coins = {ids.funding_entry(network, c.txid, c.vout): c for c in received if c.txid not in own}
        if not coins:
            return 0
        booked = await ledger.written_entries(conn, coins)
        new = {entry_id: coin for entry_id, coin in coins.items() if entry_id not in booked}
        if not new:
            return 0
        await ledger.open_accounts(conn, chart.platform_specs((network,)))
        await ledger.post_entries(
            conn,
            [
                ledger.transfer(
                    entry_id,
                    "wallet.funding",
                    debit=chart.wallet(network),
                    credit=chart.funding(network),
                    amount=coin.value,
                    memo=f"coin {coin.txid}:{coin.vout} received by the payout wallet",
                    metadata={"network": network, "txid": coin.txid, "vout": str(coin.vout)},
                )
                for entry_id, coin in sorted(new.items(), key=lambda item: (item[1].txid, item[1].vout))
            ],
        )
    return sum(coin.value for coin in new.values())
