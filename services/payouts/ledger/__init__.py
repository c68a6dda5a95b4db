"""crowdquant's double-entry ledger in plain PostgreSQL (schema ``payouts``), kept honest by the database.

Model
    Accounts (code, type asset/liability/equity/income/expense, BTC in satoshis, limit flags
    ``non_negative`` / ``non_positive``, owner, metadata). Entries: a caller-chosen UUID (the
    idempotency key), kind, memo, metadata, ``effective_at`` (business time, caller's) and
    ``recorded_at`` (the database's, which the application role may not set). Postings: entry, account,
    signed BIGINT amount (positive = debit, negative = credit); an entry has >= 2 summing to zero.
    Balances are debits - credits.

What the database enforces (``ddl.py``), whatever the client does
    * each entry balances (deferred constraint trigger at COMMIT: sum 0, at least 2 postings), and
      postings cannot be added to an entry once it has committed;
    * append-only: triggers refuse UPDATE/DELETE/TRUNCATE of entries, postings, chain and accounts,
      even for the owner; the application role ``crowdquant_app`` has no such grants and cannot write
      balances or the chain, only the SECURITY DEFINER trigger functions can;
    * limits, race-free: when postings land, their accounts' balance rows are locked ``FOR UPDATE`` in
      account-id order (no deadlock between writers), checked, and updated in the same transaction;
    * the hash chain: at COMMIT each entry gets ``seq`` and ``hash = SHA-256(prev hash || seq ||
      content hash || recorded time)``, computed in SQL (builtin ``sha256``) while the transaction
      holds the one-row chain head; the content hash is the SHA-256 of the canonical encoding of the
      entry and its postings (``domain.canonical_entry``), so Python and SQL agree byte for byte.
      Appending at commit means the head is held only for the commit itself: writers run in parallel
      until then, and the chain order is the commit order. A transaction's entries are appended in
      one pass (batches) and in the order they were written.

Idempotency
    Writing an entry id again with the same content returns the first result (``created=False``);
    with different content it raises ALREADY_EXISTS, also for a repeat inside one batch. A concurrent
    writer of the same id is waited for (``ON CONFLICT DO NOTHING``) and then compared the same way.

Group commit (``group_commit.py``)
    ``GroupCommit.post`` writes one entry on its own, coalescing concurrent callers into one
    transaction (one WAL flush and one chain append per group) with a savepoint each, so a refused
    entry fails alone with its own error and idempotency holds per entry id.

Two-phase transfers (``pending.py``, after TigerBeetle's pending/post/void)
    ``reserve`` writes a ``pending.reserve`` entry moving the amount from the debit account into a
    holding account (so the debit account's limit applies at once) and a ``ledger_pending`` row in
    state PENDING. ``post_pending`` writes a ``pending.post`` entry moving it (or part: the rest goes
    back) from the holding account to the credit account; ``void_pending`` a ``pending.void`` entry
    moving it all back. The row resolves once (row lock + trigger-checked transition). All three are
    ordinary entries, so balances, limits and the chain stay right with no special case; a balance's
    ``pending`` field says how much of it is still reserved.

Bulk reads for payouts (``views.py``)
    Balances of many accounts at once (``balances_of``), per-model participant accounts of one kind
    (``owed``, ``model_accounts``, as ``ModelAccount``), an account's last change (``last_change``)
    and which entry ids are already written (``written_entries``). Nothing outside this package
    queries the ledger's tables.

Reading
    Current balances from ``ledger_balances``; as of any time (effective or recorded) by summing the
    covering index (account_id, time) INCLUDE (amount), zero before the first posting. Trial balance,
    statements per owner, entries in chain order with keyset pages, CSV export, chain head and a full
    chain verification (``chain.py``).

All functions take the caller's SQLAlchemy ``AsyncConnection`` (asyncpg) and work inside its
transaction, through the application role. READ COMMITTED suits writers best: under REPEATABLE READ
or SERIALIZABLE a concurrent write to the same balance or chain head fails the transaction with a
serialisation error (ABORTED: retry), never a forked chain. Errors are ``shared.errors`` classes;
``translate_error`` maps the database's own refusals, including those raised at COMMIT.
"""

from services.payouts.ledger.accounts import get_account, list_accounts, open_account, open_accounts
from services.payouts.ledger.balances import get_balance, statement, trial_balance
from services.payouts.ledger.chain import chain_head, check_balances, verify_chain
from services.payouts.ledger.ddl import APP_ROLE, LEDGER_DOWNGRADE, LEDGER_UPGRADE
from services.payouts.ledger.domain import (
    AccountSpec,
    AccountType,
    EntrySpec,
    IdempotencyConflict,
    LimitExceeded,
    PendingState,
    PostingSpec,
    TimeBasis,
    UnbalancedEntry,
    transfer,
)
from services.payouts.ledger.entries import EntryFilter, export_entries_csv, get_entry, list_entries
from services.payouts.ledger.group_commit import GroupCommit
from services.payouts.ledger.pending import (
    Reservation,
    Settlement,
    get_pending,
    post_pending,
    reserve,
    reserve_many,
    settle_many,
    void_pending,
)
from services.payouts.ledger.pg import translate_error
from services.payouts.ledger.posting import new_entry_id, post_entries, post_entry, reverse_entry
from services.payouts.ledger.views import (
    ModelAccount,
    balances_of,
    last_change,
    model_accounts,
    owed,
    written_entries,
)

__all__ = [
    "APP_ROLE",
    "LEDGER_DOWNGRADE",
    "LEDGER_UPGRADE",
    "AccountSpec",
    "AccountType",
    "EntryFilter",
    "EntrySpec",
    "GroupCommit",
    "IdempotencyConflict",
    "LimitExceeded",
    "ModelAccount",
    "PendingState",
    "PostingSpec",
    "Reservation",
    "Settlement",
    "TimeBasis",
    "UnbalancedEntry",
    "balances_of",
    "chain_head",
    "check_balances",
    "export_entries_csv",
    "get_account",
    "get_balance",
    "get_entry",
    "get_pending",
    "last_change",
    "list_accounts",
    "list_entries",
    "model_accounts",
    "new_entry_id",
    "open_account",
    "open_accounts",
    "owed",
    "post_entries",
    "post_entry",
    "post_pending",
    "reserve",
    "reserve_many",
    "reverse_entry",
    "settle_many",
    "statement",
    "transfer",
    "translate_error",
    "trial_balance",
    "verify_chain",
    "void_pending",
    "written_entries",
]
