"""Ed25519 receipts: sign, verify, and refuse any altered field."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crowdquant.formats import receipts
from crowdquant.formats.errors import ReceiptInvalid
from shared.errors import InvalidArgument

KEY = receipts.generate_signing_key()
WHEN = datetime(2016, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
SHA = "ab" * 32


def _receipt() -> receipts.Receipt:
    return receipts.sign_receipt(
        KEY,
        tournament_id="numerai",
        round_number=33,
        model_id="m-1",
        version=2,
        content_sha256=SHA,
        row_count=36072,
        accept_time=WHEN,
    )


def test_receipt_verifies_with_the_public_key_and_has_a_canonical_payload() -> None:
    receipt = _receipt()
    receipts.verify_receipt(KEY.public_key(), receipt, receipt.payload)
    document = json.loads(receipt.payload)
    assert document == {
        "accept_time": "2016-12-01T12:00:00.123456Z",
        "content_sha256": SHA,
        "key_id": receipts.key_id(KEY),
        "model_id": "m-1",
        "round_number": 33,
        "row_count": 36072,
        "tournament_id": "numerai",
        "type": "crowdquant.submission-receipt",
        "v": 1,
        "version": 2,
    }
    assert list(document) == sorted(document) and b" " not in receipt.payload
    assert receipts.ReceiptFields.from_payload(receipt.payload) == receipt.fields


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tournament_id", "other"),
        ("round_number", 34),
        ("model_id", "m-2"),
        ("version", 3),
        ("content_sha256", "cd" * 32),
        ("row_count", 36071),
        ("accept_time", "2016-12-01T12:00:01.123456Z"),
    ],
)
def test_any_altered_field_fails(field: str, value: object) -> None:
    receipt = _receipt()
    altered = receipts.Receipt(dataclasses.replace(receipt.fields, **{field: value}), receipt.signature)
    with pytest.raises(ReceiptInvalid, match="does not verify"):
        receipts.verify_receipt(KEY.public_key(), altered)
    with pytest.raises(ReceiptInvalid, match=f"differ from the signed payload: {field}"):
        receipts.verify_receipt(KEY.public_key(), altered, receipt.payload)


def test_signature_or_key_mismatch_fails() -> None:
    receipt = _receipt()
    flipped = bytes([receipt.signature[0] ^ 1]) + receipt.signature[1:]
    with pytest.raises(ReceiptInvalid, match="does not verify"):
        receipts.verify_receipt(KEY.public_key(), receipts.Receipt(receipt.fields, flipped))
    other = receipts.generate_signing_key()
    with pytest.raises(ReceiptInvalid, match="names signing key"):
        receipts.verify_receipt(other.public_key(), receipt)
    forged = dataclasses.replace(receipt.fields, key_id=receipts.key_id(other))
    with pytest.raises(ReceiptInvalid, match="does not verify"):
        receipts.verify_receipt(other.public_key(), receipts.Receipt(forged, receipt.signature))


def test_keys_round_trip_through_pem_and_raw_bytes() -> None:
    pem = receipts.private_key_to_pem(KEY)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = receipts.load_private_key_pem(pem)
    encrypted = receipts.private_key_to_pem(KEY, password=b"secret")
    assert receipts.key_id(receipts.load_private_key_pem(encrypted, password=b"secret")) == receipts.key_id(KEY)
    public = receipts.load_public_key_pem(receipts.public_key_to_pem(KEY.public_key()))
    raw = receipts.public_key_raw(public)
    assert receipts.key_id(loaded) == receipts.key_id(public) == hashlib.sha256(raw).hexdigest()[:16]
    receipts.verify_receipt(receipts.load_public_key_raw(raw), _receipt())


def test_bad_keys_and_fields_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="not a readable PEM private key"):
        receipts.load_private_key_pem(b"nonsense")
    with pytest.raises(InvalidArgument, match="32 bytes"):
        receipts.load_public_key_raw(b"\0" * 31)
    with pytest.raises(InvalidArgument, match="timezone-aware"):
        receipts.sign_receipt(
            KEY,
            tournament_id="t",
            round_number=1,
            model_id="m",
            version=1,
            content_sha256=SHA,
            row_count=1,
            accept_time=datetime(2016, 1, 1),
        )
    with pytest.raises(InvalidArgument, match="64 lowercase hex"):
        receipts.sign_receipt(
            KEY,
            tournament_id="t",
            round_number=1,
            model_id="m",
            version=1,
            content_sha256="AB" * 32,
            row_count=1,
            accept_time=WHEN,
        )
    with pytest.raises(ReceiptInvalid, match="not a crowdquant receipt"):
        receipts.ReceiptFields.from_payload(b'{"type": 1}')


def test_times_are_normalised_to_utc() -> None:
    plus_two = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert receipts.rfc3339(plus_two) == "2016-12-01T12:00:00.123456Z"
