"""The ledger's pure rules: entry checks, canonical encoding, hashes, batch repeats, two-phase postings."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payouts.ledger.domain import (
    GENESIS_HASH,
    AccountSpec,
    AccountType,
    EntrySpec,
    IdempotencyConflict,
    PostingSpec,
    UnbalancedEntry,
    canonical_entry,
    chain_hash,
    content_hash,
    dedupe_batch,
    from_micros,
    micros,
    reversal_postings,
    same_request,
    settle_postings,
    transfer,
    validate_account,
    validate_entry,
)
from shared.errors import AlreadyExists, InvalidArgument

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _spec(*legs: tuple[str, object], **fields: object) -> EntrySpec:
    return EntrySpec(
        fields.pop("id", ID),
        fields.pop("kind", "allocation"),  # type: ignore[arg-type]
        [PostingSpec(code, amount) for code, amount in legs],
        **fields,
    )  # type: ignore[arg-type]


def test_a_balanced_entry_validates_and_fills_the_effective_time():
    draft = validate_entry(_spec(("a", 5), ("b", -5)), now=NOW)
    assert draft.effective_at == NOW and not draft.effective_at_given
    assert [(p.account, p.amount) for p in draft.postings] == [("a", 5), ("b", -5)]
    assert len(draft.content_hash) == 32


def test_numpy_integers_are_amounts():
    draft = validate_entry(_spec(("a", np.int64(7)), ("b", np.int64(-7))), now=NOW)
    assert [type(p.amount) for p in draft.postings] == [int, int]


@pytest.mark.parametrize(
    ("legs", "error", "message"),
    [
        ((("a", 5),), UnbalancedEntry, "has 1 posting"),
        ((), UnbalancedEntry, "has 0 posting"),
        ((("a", 5), ("b", -4)), UnbalancedEntry, "debits 5 sat, credits 4 sat"),
        (
            (("a", 5.0), ("b", -5)),
            InvalidArgument,
            r"postings\[0\]\.amount must be an integer number of satoshis, not float",
        ),
        (
            (("a", True), ("b", -1)),
            InvalidArgument,
            r"postings\[0\]\.amount must be an integer number of satoshis, not bool",
        ),
        ((("a", 0), ("b", 0)), InvalidArgument, r"postings\[0\]\.amount must be more than 0"),
        ((("a", 5), ("a", -5)), InvalidArgument, r"postings\[1\] and postings\[0\] both post to a"),
        ((("A!", 5), ("b", -5)), InvalidArgument, r"postings\[0\]\.account 'A!' is not an account code"),
        ((("a", 3 * 10**15), ("b", -3 * 10**15)), InvalidArgument, "21 million BTC"),
    ],
)
def test_bad_entries_name_what_to_fix(legs, error, message):
    with pytest.raises(error, match=message):
        validate_entry(_spec(*legs), now=NOW)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "Bad Kind"}, "kind 'Bad Kind' must be"),
        ({"kind": "reversal"}, "is reserved"),
        ({"memo": "x" * 1001}, "at most 1000"),
        ({"memo": "nul\x00"}, "NUL"),
        ({"metadata": {"k": 1}}, r"metadata\['k'\] must be a string"),
        ({"metadata": ["k"]}, "must be a mapping"),
        ({"effective_at": datetime(2026, 1, 1)}, "must carry a time zone"),
        ({"id": "not-a-uuid"}, "must be a UUID"),
    ],
)
def test_bad_fields_are_refused(fields, message):
    with pytest.raises(InvalidArgument, match=message):
        validate_entry(_spec(("a", 1), ("b", -1), **fields), now=NOW)


def test_reserved_kinds_pass_for_the_functions_that_write_them():
    draft = validate_entry(
        _spec(("a", 1), ("b", -1), kind="reversal"), now=NOW, allow_reserved_kind=True, reverses=uuid.uuid4()
    )
    assert draft.kind == "reversal" and draft.reverses is not None


def test_content_hash_covers_every_field():
    base = dict(
        kind="allocation",
        memo="m",
        metadata={"round": "1"},
        effective_us=micros(NOW),
        postings=[("a", 5), ("b", -5)],
        reverses=None,
        pending_id=None,
    )
    reference = content_hash(ID, **base)  # type: ignore[arg-type]
    changes = [
        {"kind": "fee"},
        {"memo": "n"},
        {"metadata": {"round": "2"}},
        {"effective_us": micros(NOW) + 1},
        {"postings": [("a", 6), ("b", -6)]},
        {"postings": [("b", -5), ("a", 5)]},
        {"postings": [("c", 5), ("b", -5)]},
        {"reverses": uuid.uuid4()},
        {"pending_id": uuid.uuid4()},
    ]
    for change in changes:
        assert content_hash(ID, **{**base, **change}) != reference, change  # type: ignore[arg-type]
    assert content_hash(uuid.uuid4(), **base) != reference  # type: ignore[arg-type]


texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@given(
    memo=texts,
    metadata=st.dictionaries(texts.filter(bool), texts, max_size=4),
    effective_us=st.integers(-(10**16), 10**16),
    reverses=st.none() | st.uuids(),
    pending_id=st.none() | st.uuids(),
    postings=st.lists(
        st.tuples(st.from_regex(r"[a-z0-9][a-z0-9_.:/@-]{0,10}", fullmatch=True), st.integers(-(10**15), 10**15)),
        min_size=2,
        max_size=5,
    ),
)
def test_canonical_encoding_is_sorted_compact_json(memo, metadata, effective_us, reverses, pending_id, postings):
    document = {
        "v": 1,
        "id": str(ID),
        "kind": "allocation",
        "memo": memo,
        "metadata": metadata,
        "effective_us": effective_us,
        "reverses": str(reverses) if reverses else None,
        "pending_id": str(pending_id) if pending_id else None,
        "postings": [list(p) for p in postings],
    }
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_entry(ID, "allocation", memo, metadata, effective_us, postings, reverses, pending_id) == expected


def test_chain_hash_is_sha256_of_the_link_fields():
    digest = hashlib.sha256(b"entry").digest()
    expected = hashlib.sha256(GENESIS_HASH + (1).to_bytes(8, "big") + digest + (1234).to_bytes(8, "big")).digest()
    assert chain_hash(GENESIS_HASH, 1, digest, 1234) == expected
    assert chain_hash(GENESIS_HASH, 2, digest, 1234) != expected


def test_micros_are_exact_both_ways():
    for moment in (
        NOW,
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=5))),
    ):
        assert from_micros(micros(moment)) == moment
    assert micros(datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == 1


def test_a_retry_without_effective_time_matches_the_stored_time():
    first = validate_entry(_spec(("a", 5), ("b", -5)), now=NOW)
    retry = validate_entry(_spec(("a", 5), ("b", -5)), now=NOW + timedelta(seconds=3))
    assert retry.content_hash != first.content_hash
    assert same_request(retry, first.content_hash, first.effective_at)
    other = validate_entry(_spec(("a", 6), ("b", -6)), now=NOW)
    assert not same_request(other, first.content_hash, first.effective_at)
    explicit = validate_entry(_spec(("a", 5), ("b", -5), effective_at=NOW + timedelta(seconds=1)), now=NOW)
    assert not same_request(explicit, first.content_hash, first.effective_at)


def test_repeats_in_a_batch_collapse_or_are_refused():
    one = validate_entry(_spec(("a", 5), ("b", -5)), now=NOW)
    two = validate_entry(_spec(("a", 1), ("b", -1), id=uuid.uuid4()), now=NOW)
    distinct, mapping = dedupe_batch([one, two, one])
    assert distinct == [one, two] and mapping == [0, 1, 0]
    clash = validate_entry(_spec(("a", 9), ("b", -9)), now=NOW)
    with pytest.raises(IdempotencyConflict, match=r"appears twice in this batch \(positions 0 and 2\)") as info:
        dedupe_batch([one, two, clash])
    assert isinstance(info.value, AlreadyExists)


def test_settlement_postings_empty_the_holding_account():
    full = settle_postings(holding="h", debit="d", credit="c", reserved=100, amount=100)
    part = settle_postings(holding="h", debit="d", credit="c", reserved=100, amount=60)
    void = settle_postings(holding="h", debit="d", credit="c", reserved=100, amount=0)
    assert [(p.account, p.amount) for p in full] == [("h", 100), ("c", -100)]
    assert [(p.account, p.amount) for p in part] == [("h", 100), ("c", -60), ("d", -40)]
    assert [(p.account, p.amount) for p in void] == [("h", 100), ("d", -100)]
    for bad in (101, -1):
        with pytest.raises(InvalidArgument, match="between 0 and the 100 sat reserved"):
            settle_postings(holding="h", debit="d", credit="c", reserved=100, amount=bad)


def test_reversal_flips_every_sign_in_order():
    assert [(p.account, p.amount) for p in reversal_postings([("a", 5), ("b", -3), ("c", -2)])] == [
        ("a", -5),
        ("b", 3),
        ("c", 2),
    ]


def test_transfer_builds_two_postings():
    spec = transfer(ID, "payout", debit="x", credit="y", amount=42)
    assert [(p.account, p.amount) for p in spec.postings] == [("x", 42), ("y", -42)]
    with pytest.raises(InvalidArgument, match="more than 0"):
        transfer(ID, "payout", debit="x", credit="y", amount=0)


def test_account_specs():
    spec = validate_account(AccountSpec("participant:1:payable", "liability", non_positive=True))  # type: ignore[arg-type]
    assert spec.type is AccountType.LIABILITY
    with pytest.raises(InvalidArgument, match="not one of asset"):
        validate_account(AccountSpec("x", "cash"))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="pin the balance at zero"):
        validate_account(AccountSpec("x", AccountType.ASSET, non_negative=True, non_positive=True))
    with pytest.raises(InvalidArgument, match="must be true or false"):
        validate_account(AccountSpec("x", AccountType.ASSET, non_negative=1))  # type: ignore[arg-type]
