"""What the ledger's functions return: plain frozen records, ready to map onto the LedgerAudit messages.

Amounts are signed satoshis (positive = debit, negative = credit); balances are debits - credits.
Hashes are lowercase hex so they can be published and compared as text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from services.payouts.ledger.domain import AccountType, PendingState, TimeBasis

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; an empty ``next_page_token`` means there is nothing more."""

    items: list[T]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    code: str
    type: AccountType
    non_negative: bool
    non_positive: bool
    owner: str
    metadata: dict[str, str]
    created_at: datetime
    balance: int
    """Current balance (debits - credits), including amounts reserved by pending transfers."""


@dataclass(frozen=True, slots=True)
class Balance:
    account_code: str
    as_of: datetime
    basis: TimeBasis
    balance: int
    """Debits - credits of every posting up to ``as_of`` (inclusive); zero before the first one."""
    pending: int
    """The part of ``balance`` made of reservations still pending at ``as_of`` (payouts in flight)."""
    posting_count: int


@dataclass(frozen=True, slots=True)
class Posting:
    account_code: str
    amount: int


@dataclass(frozen=True, slots=True)
class PostResult:
    """The outcome of writing one entry; ``created`` is False when an earlier identical write is returned."""

    entry_id: uuid.UUID
    effective_at: datetime
    recorded_at: datetime
    content_hash: str
    created: bool


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: uuid.UUID
    sequence: int | None
    """Position in the hash chain from 1; None only inside the writing transaction before it commits."""
    kind: str
    memo: str
    metadata: dict[str, str]
    effective_at: datetime
    recorded_at: datetime
    postings: list[Posting]
    pending: bool
    """A reservation (first phase of a two-phase transfer) not yet posted or voided."""
    settles_entry_id: uuid.UUID | None
    """For a post or void: the reservation entry it settles."""
    reverses_entry_id: uuid.UUID | None
    pending_id: uuid.UUID | None
    content_hash: str
    previous_hash: str
    """Empty for the first entry of the chain."""
    hash: str


@dataclass(frozen=True, slots=True)
class PendingTransfer:
    """A two-phase transfer: ``amount`` reserved from ``debit`` into ``holding``, bound for ``credit``."""

    pending_id: uuid.UUID
    reserve_entry_id: uuid.UUID
    debit: str
    credit: str
    holding: str
    amount: int
    state: PendingState
    resolved_by: uuid.UUID | None
    posted_amount: int | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class TrialBalanceLine:
    account_code: str
    type: AccountType
    debit: int
    """Sum of the account's debits (>= 0)."""
    credit: int
    """Sum of the account's credits, as a positive number."""
    balance: int


@dataclass(frozen=True, slots=True)
class TrialBalance:
    as_of: datetime
    basis: TimeBasis
    lines: list[TrialBalanceLine]
    total_debit: int
    total_credit: int

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


@dataclass(frozen=True, slots=True)
class StatementLine:
    entry_id: uuid.UUID
    kind: str
    memo: str
    effective_at: datetime
    recorded_at: datetime
    amount: int
    running_balance: int


@dataclass(frozen=True, slots=True)
class AccountStatement:
    account_code: str
    type: AccountType
    opening_balance: int
    lines: list[StatementLine]
    closing_balance: int


@dataclass(frozen=True, slots=True)
class Statement:
    owner: str
    start: datetime | None
    end: datetime
    basis: TimeBasis
    accounts: list[AccountStatement] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The latest link of the hash chain; publish it so a later rewrite of history shows."""

    sequence: int
    """0 for an empty ledger."""
    entry_id: uuid.UUID | None
    hash: str
    recorded_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    entries_checked: int
    head: ChainHead
    first_bad_entry_id: uuid.UUID | None = None
    first_bad_sequence: int | None = None
    reason: str = ""
    expected_hash: str = ""
    """What the chain hash of the first bad entry should be, recomputed from the stored rows."""
    actual_hash: str = ""
    """What is stored for it."""


@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    account_code: str
    stored: int
    computed: int
