"""Pure ledger rules: what a valid account and entry are, their canonical encoding, and the hashes.

Nothing here touches the database, so every rule is unit-tested directly. The database enforces the
same invariants again (see ``ddl.py``); validating here first gives the caller a message naming the
posting or field to fix instead of a constraint name.

Sign convention (as in the LedgerAudit proto): a posting's amount is signed satoshis, positive = debit,
negative = credit; an account's balance is debits - credits; an entry's postings sum to zero.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from json.encoder import encode_basestring as _json_string  # type: ignore[attr-defined]

from shared.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from shared.money import MAX_MONEY, require_satoshis

ENCODING_VERSION = 1
"""Bumped if the canonical encoding ever changes, so old entries still verify with the old rules."""

GENESIS_HASH = bytes(32)
"""The "previous hash" of the first entry of the chain."""

MAX_POSTINGS = 10_000
"""One payout batch entry may pay thousands of participants; more than this is a mistake."""
MAX_MEMO = 1000
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 1024

CODE_PATTERN = r"^[a-z0-9][a-z0-9_.:/@-]{0,127}$"
"""Account codes such as ``participant:42:payable``; the same pattern is a CHECK in the database."""
KIND_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"
_CODE_RE = re.compile(CODE_PATTERN)
_KIND_RE = re.compile(KIND_PATTERN)

KIND_PENDING = "pending.reserve"
KIND_POST_PENDING = "pending.post"
KIND_VOID_PENDING = "pending.void"
KIND_REVERSAL = "reversal"
RESERVED_KINDS = frozenset({KIND_PENDING, KIND_POST_PENDING, KIND_VOID_PENDING, KIND_REVERSAL})
"""Kinds only the two-phase and reversal functions write, so an entry's kind can be trusted."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


class TimeBasis(StrEnum):
    """Which clock an as-of query reads: when an entry takes effect, or when it was written."""

    EFFECTIVE = "effective"
    RECORDED = "recorded"


class PendingState(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"


class LimitExceeded(FailedPrecondition):
    """A posting would take a non-negative (or non-positive) account past zero."""

    default_reason = "LEDGER_LIMIT_EXCEEDED"


class IdempotencyConflict(AlreadyExists):
    """An entry id was used before (or earlier in the same batch) for different content."""

    default_reason = "LEDGER_ENTRY_ID_REUSED"


class UnbalancedEntry(InvalidArgument):
    """An entry's postings do not sum to zero, or there are fewer than two."""

    default_reason = "LEDGER_ENTRY_UNBALANCED"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What a caller asks for when opening an account; opening it again with the same spec is a no-op."""

    code: str
    type: AccountType
    non_negative: bool = False
    non_positive: bool = False
    owner: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PostingSpec:
    account: str
    amount: int


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """A journal entry as a caller writes it. ``id`` is the idempotency key: persist it before the call."""

    id: uuid.UUID
    kind: str
    postings: Sequence[PostingSpec]
    memo: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    effective_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """A validated entry ready to store: the effective time is fixed and the content hash computed.

    ``effective_at_given`` remembers whether the caller chose the effective time: a retry that leaves
    it unset must match the first attempt, whose time was filled in then.
    """

    id: uuid.UUID
    kind: str
    memo: str
    metadata: dict[str, str]
    effective_at: datetime
    effective_at_given: bool
    postings: tuple[PostingSpec, ...]
    reverses: uuid.UUID | None
    pending_id: uuid.UUID | None
    content_hash: bytes


def transfer(
    entry_id: uuid.UUID,
    kind: str,
    *,
    debit: str,
    credit: str,
    amount: int,
    memo: str = "",
    metadata: Mapping[str, str] | None = None,
    effective_at: datetime | None = None,
) -> EntrySpec:
    """The common two-posting entry: ``amount`` satoshis debited to one account and credited to another."""
    sats = require_satoshis(amount, "amount", allow_zero=False)
    return EntrySpec(
        id=entry_id,
        kind=kind,
        postings=(PostingSpec(debit, sats), PostingSpec(credit, -sats)),
        memo=memo,
        metadata=dict(metadata or {}),
        effective_at=effective_at,
    )


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch: the exact integer both Python and SQL hash for a timestamp."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def require_time(value: object, name: str) -> datetime:
    """A timezone-aware datetime: a naive one would be read in the server's zone and silently shift."""
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{name} must be a datetime, not {type(value).__name__}", metadata={"field": name})
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(
            f"{name} must carry a time zone (got naive {value.isoformat()})", metadata={"field": name}
        )
    return value


def _require_text(value: object, name: str, *, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, not {type(value).__name__}", metadata={"field": name})
    if len(value) > limit:
        raise InvalidArgument(
            f"{name} is {len(value)} characters long; at most {limit} are allowed", metadata={"field": name}
        )
    if "\x00" in value:
        raise InvalidArgument(f"{name} must not contain NUL characters", metadata={"field": name})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"{name} is not valid Unicode text", metadata={"field": name}) from exc
    return value


def require_code(value: object, name: str = "account") -> str:
    code = _require_text(value, name, limit=128)
    if not _CODE_RE.match(code):
        raise InvalidArgument(
            f"{name} {code!r} is not an account code: use 1-128 of a-z 0-9 _ . : / @ - starting with a "
            "letter or digit, e.g. 'participant:42:payable'",
            metadata={"field": name},
        )
    return code


def require_metadata(value: object, name: str = "metadata") -> dict[str, str]:
    """String keys to string values only, so the canonical encoding is the same in every language."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{name} must be a mapping of strings to strings", metadata={"field": name})
    if len(value) > MAX_METADATA_KEYS:
        raise InvalidArgument(
            f"{name} has {len(value)} keys; at most {MAX_METADATA_KEYS} are allowed", metadata={"field": name}
        )
    clean: dict[str, str] = {}
    for key, item in value.items():
        _require_text(key, f"{name} key", limit=MAX_METADATA_KEY)
        if not key:
            raise InvalidArgument(f"{name} keys must not be empty", metadata={"field": name})
        clean[key] = _require_text(item, f"{name}[{key!r}]", limit=MAX_METADATA_VALUE)
    return clean


def require_uuid(value: object, name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidArgument(f"{name} must be a UUID (got {value!r})", metadata={"field": name})


def validate_account(spec: AccountSpec) -> AccountSpec:
    """The spec with its fields checked and normalised (type as the enum, metadata as a plain dict)."""
    code = require_code(spec.code, "code")
    try:
        kind = AccountType(spec.type)
    except ValueError as exc:
        allowed = ", ".join(t.value for t in AccountType)
        raise InvalidArgument(
            f"account {code}: type {spec.type!r} is not one of {allowed}", metadata={"field": "type"}
        ) from exc
    for flag in ("non_negative", "non_positive"):
        if not isinstance(getattr(spec, flag), bool):
            raise InvalidArgument(f"account {code}: {flag} must be true or false", metadata={"field": flag})
    if spec.non_negative and spec.non_positive:
        raise InvalidArgument(
            f"account {code}: non_negative and non_positive together would pin the balance at zero; pick one",
            metadata={"field": "non_negative"},
        )
    owner = _require_text(spec.owner, "owner", limit=256)
    return AccountSpec(code, kind, spec.non_negative, spec.non_positive, owner, require_metadata(spec.metadata))


def _check_postings(label: str, postings: object) -> tuple[PostingSpec, ...]:
    """The postings, checked; the common case (PostingSpec, str code, int amount) takes the fast path."""
    if type(postings) not in (list, tuple) and (
        isinstance(postings, (str, bytes)) or not isinstance(postings, Sequence)
    ):
        raise InvalidArgument(f"{label}: postings must be a list of postings", metadata={"field": "postings"})
    count = len(postings)  # type: ignore[arg-type]
    if count < 2:
        raise UnbalancedEntry(
            f"{label} has {count} posting(s); an entry needs at least 2", metadata={"field": "postings"}
        )
    if count > MAX_POSTINGS:
        raise InvalidArgument(
            f"{label} has {count} postings; at most {MAX_POSTINGS} are allowed",
            metadata={"field": "postings"},
        )
    checked: list[PostingSpec] = []
    first_seen: dict[str, int] = {}
    total = 0
    for index, posting in enumerate(postings):  # type: ignore[arg-type]
        if not isinstance(posting, PostingSpec):
            raise InvalidArgument(
                f"{label}: postings[{index}] must be a PostingSpec", metadata={"field": f"postings[{index}]"}
            )
        code, amount = posting.account, posting.amount
        if type(code) is not str or not _CODE_RE.match(code):
            require_code(code, f"{label} postings[{index}].account")
        if type(amount) is not int or amount == 0 or not -MAX_MONEY <= amount <= MAX_MONEY:
            amount = require_satoshis(
                amount, f"{label} postings[{index}].amount", allow_negative=True, allow_zero=False
            )
        if code in first_seen:
            raise InvalidArgument(
                f"{label}: postings[{index}] and postings[{first_seen[code]}] both post to {code}; "
                "combine them into one posting",
                metadata={"field": f"postings[{index}]"},
            )
        first_seen[code] = index
        total += amount
        checked.append(
            posting if type(posting) is PostingSpec and posting.amount is amount else PostingSpec(code, amount)
        )
    if total != 0:
        debits = sum(p.amount for p in checked if p.amount > 0)
        credits = -sum(p.amount for p in checked if p.amount < 0)
        raise UnbalancedEntry(
            f"{label} does not balance: debits {debits} sat, credits {credits} sat (difference {total} sat); "
            "postings must sum to zero",
            metadata={"field": "postings"},
        )
    return tuple(checked)


def validate_entry(
    spec: EntrySpec,
    *,
    now: datetime,
    allow_reserved_kind: bool = False,
    reverses: uuid.UUID | None = None,
    pending_id: uuid.UUID | None = None,
) -> EntryDraft:
    """Check an entry and compute its content hash; ``now`` fills a missing effective time.

    Reserved kinds (two-phase and reversal) are refused from ordinary callers so that an entry of kind
    ``reversal`` always is one; the functions that write them pass ``allow_reserved_kind``. Batches of
    thousands go through here, so the common case avoids building messages it will not need.
    """
    if not isinstance(spec, EntrySpec):
        raise InvalidArgument(f"expected an EntrySpec, got {type(spec).__name__}", metadata={"field": "entry"})
    entry_id = spec.id if type(spec.id) is uuid.UUID else require_uuid(spec.id, "entry id")
    label = f"entry {entry_id}"
    kind = spec.kind
    if type(kind) is not str or not _KIND_RE.match(kind):
        _require_text(kind, f"{label} kind", limit=64)
        raise InvalidArgument(
            f"{label}: kind {kind!r} must be 1-64 of a-z 0-9 _ . starting with a letter",
            metadata={"field": "kind"},
        )
    if kind in RESERVED_KINDS and not allow_reserved_kind:
        raise InvalidArgument(
            f"{label}: kind {kind!r} is reserved; use reserve/post_pending/void_pending/reverse_entry",
            metadata={"field": "kind"},
        )
    memo = spec.memo
    if type(memo) is not str or memo:
        memo = _require_text(memo, f"{label} memo", limit=MAX_MEMO)
    metadata = spec.metadata
    metadata = {} if type(metadata) is dict and not metadata else require_metadata(metadata, f"{label} metadata")
    given = spec.effective_at is not None
    effective_at = require_time(spec.effective_at, f"{label} effective_at") if given else now
    postings = _check_postings(label, spec.postings)
    digest = content_hash(entry_id, kind, memo, metadata, micros(effective_at), postings, reverses, pending_id)
    return EntryDraft(entry_id, kind, memo, metadata, effective_at, given, postings, reverses, pending_id, digest)


def canonical_entry(
    entry_id: uuid.UUID,
    kind: str,
    memo: str,
    metadata: Mapping[str, str],
    effective_us: int,
    postings: Sequence[PostingSpec] | Sequence[tuple[str, int]],
    reverses: uuid.UUID | None,
    pending_id: uuid.UUID | None,
) -> bytes:
    """The bytes an entry's content hash covers: compact JSON with sorted keys, UTF-8.

    Exactly ``json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` of
    ``{"v": 1, "id", "kind", "memo", "metadata", "effective_us", "reverses", "pending_id",
    "postings": [[code, amount], ...]}``. Only strings and integers occur (satoshis, microseconds since
    the epoch, account codes rather than internal ids), so any language reproduces it; postings keep
    their order. Written out by hand because verifying a million entries calls this a million times.
    """
    text = _json_string
    legs = ",".join(
        f"[{text(p[0])},{p[1]}]" if type(p) is tuple else f"[{text(p.account)},{p.amount}]"  # type: ignore[union-attr]
        for p in postings
    )
    pairs = ",".join(f"{text(k)}:{text(v)}" for k, v in sorted(metadata.items())) if metadata else ""
    document = (
        f'{{"effective_us":{effective_us},"id":"{entry_id}","kind":{text(kind)},"memo":{text(memo)},'
        f'"metadata":{{{pairs}}},"pending_id":{text(str(pending_id)) if pending_id else "null"},'
        f'"postings":[{legs}],"reverses":{text(str(reverses)) if reverses else "null"},'
        f'"v":{ENCODING_VERSION}}}'
    )
    return document.encode("utf-8")


def content_hash(
    entry_id: uuid.UUID,
    kind: str,
    memo: str,
    metadata: Mapping[str, str],
    effective_us: int,
    postings: Sequence[PostingSpec] | Sequence[tuple[str, int]],
    reverses: uuid.UUID | None,
    pending_id: uuid.UUID | None,
) -> bytes:
    """SHA-256 of the canonical encoding: what idempotency compares and what the chain commits to."""
    encoded = canonical_entry(entry_id, kind, memo, metadata, effective_us, postings, reverses, pending_id)
    return hashlib.sha256(encoded).digest()


def chain_hash(previous: bytes, seq: int, digest: bytes, recorded_us: int) -> bytes:
    """SHA-256(previous hash || seq || content hash || recorded time), integers as 8-byte big-endian.

    The database computes the same with ``sha256(prev || int8send(seq) || content_hash ||
    int8send(recorded_us))`` when the entry commits; an auditor recomputes it from the stored rows.
    The recorded time is covered here (not in the content hash) because only the database knows it.
    """
    return hashlib.sha256(
        previous + seq.to_bytes(8, "big", signed=True) + digest + recorded_us.to_bytes(8, "big", signed=True)
    ).digest()


def same_request(draft: EntryDraft, stored_hash: bytes, stored_effective_at: datetime) -> bool:
    """Whether a retried entry matches the stored one; an unset effective time matches the stored time."""
    if draft.effective_at_given:
        return draft.content_hash == stored_hash
    digest = content_hash(
        draft.id,
        draft.kind,
        draft.memo,
        draft.metadata,
        micros(stored_effective_at),
        draft.postings,
        draft.reverses,
        draft.pending_id,
    )
    return digest == stored_hash


def dedupe_batch(drafts: Sequence[EntryDraft]) -> tuple[list[EntryDraft], list[int]]:
    """Collapse repeated ids inside one batch: identical repeats become one entry, others are refused.

    Returns the distinct drafts and, for each input position, the index of its distinct draft, so the
    caller can answer every position (a repeat gets the same result as its first occurrence).
    """
    distinct: list[EntryDraft] = []
    first_position: dict[uuid.UUID, int] = {}
    slot: dict[uuid.UUID, int] = {}
    mapping: list[int] = []
    for index, draft in enumerate(drafts):
        seen = slot.get(draft.id)
        if seen is None:
            first_position[draft.id] = index
            slot[draft.id] = len(distinct)
            mapping.append(len(distinct))
            distinct.append(draft)
            continue
        if distinct[seen].content_hash != draft.content_hash:
            raise IdempotencyConflict(
                f"entry id {draft.id} appears twice in this batch (positions {first_position[draft.id]} and "
                f"{index}) with different content; give each entry its own id",
                metadata={"entry_id": str(draft.id), "field": f"entries[{index}].id"},
            )
        mapping.append(seen)
    return distinct, mapping


def reversal_postings(original: Sequence[tuple[str, int]]) -> tuple[PostingSpec, ...]:
    """The postings that undo an entry: the same accounts with the signs flipped, in the same order."""
    return tuple(PostingSpec(code, -amount) for code, amount in original)


def settle_postings(*, holding: str, debit: str, credit: str, reserved: int, amount: int) -> tuple[PostingSpec, ...]:
    """Postings that settle a reservation of ``reserved`` sat held in ``holding``.

    ``amount`` is what goes on to the final ``credit`` account (0 = void); the rest returns to the
    ``debit`` account it came from. The holding account is always emptied of this reservation, so a
    reservation is resolved exactly once and nothing stays stuck in flight.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidArgument(
            f"amount must be an integer number of satoshis, not {type(amount).__name__}",
            metadata={"field": "amount"},
        )
    if amount < 0 or amount > reserved:
        raise InvalidArgument(
            f"amount {amount} sat must be between 0 and the {reserved} sat reserved",
            metadata={"field": "amount"},
        )
    legs = [PostingSpec(holding, reserved)]
    if amount:
        legs.append(PostingSpec(credit, -amount))
    if reserved - amount:
        legs.append(PostingSpec(debit, -(reserved - amount)))
    return tuple(legs)
