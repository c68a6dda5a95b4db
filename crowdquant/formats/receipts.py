"""Ed25519-signed receipts for accepted uploads.

Why: a participant must be able to prove later what the platform accepted (which predictions, for
which round and model, when), and the platform must not be able to deny or alter it. The service
signs a canonical payload with its Ed25519 key; the public key is published (by RPC), and the
client verifies locally. Any changed field changes the payload and breaks the signature.

Canonical payload: UTF-8 JSON, keys sorted, no whitespace, ASCII only, with a ``type`` and ``v``
for domain separation and versioning::

    {"accept_time":"2016-12-01T12:00:00.000000Z","content_sha256":"...","key_id":"...",
     "model_id":"...","round_number":3,"row_count":36072,"tournament_id":"...",
     "type":"crowdquant.submission-receipt","v":1,"version":2}

The fields mirror the ``Receipt`` proto message (which also carries these bytes as
``signed_payload``). ``accept_time`` is RFC 3339 in UTC with microseconds (the database's
precision); ``key_id`` is the first 16 hex characters of SHA-256 of the raw 32-byte public key,
so a client can tell which published key to use.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crowdquant.formats.errors import ReceiptInvalid
from shared.errors import InvalidArgument

RECEIPT_TYPE = "crowdquant.submission-receipt"
RECEIPT_VERSION = 1
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted when a password is given (for storing the service key as a secret)."""
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key_pem(data: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """The service's signing key from PEM; a clear error if it is not an Ed25519 key."""
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"receipt signing key: not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument(f"receipt signing key must be Ed25519, got {type(key).__name__}")
    return key


def public_key_to_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    """The raw 32 bytes (``public_key`` in GetReceiptPublicKeyResponse)."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key_raw(data: bytes) -> Ed25519PublicKey:
    if len(data) != 32:
        raise InvalidArgument(f"an Ed25519 public key has 32 bytes, got {len(data)}")
    return Ed25519PublicKey.from_public_bytes(data)


def load_public_key_pem(data: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"receipt public key: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidArgument(f"receipt public key must be Ed25519, got {type(key).__name__}")
    return key


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """First 16 hex of SHA-256 of the raw public key: names a key in receipts and key listings."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(public_key_raw(public)).hexdigest()[:16]


def rfc3339(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: one spelling per instant, so the payload is canonical."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidArgument("receipt time must be timezone-aware (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ReceiptFields:
    """What a receipt attests (the fields of the ``Receipt`` proto message but the signature)."""

    tournament_id: str
    round_number: int
    model_id: str
    version: int
    content_sha256: str
    row_count: int
    accept_time: str  # RFC 3339 UTC, see ``rfc3339``
    key_id: str

    def validate(self) -> None:
        if not self.tournament_id or not self.model_id or self.round_number < 1:
            raise InvalidArgument("receipt needs a tournament, a round number >= 1 and a model")
        if self.version < 1 or self.row_count < 0:
            raise InvalidArgument(f"receipt version must be >= 1 and row_count >= 0 ({self.version}, {self.row_count})")
        if not _SHA256_HEX.fullmatch(self.content_sha256):
            raise InvalidArgument("receipt content_sha256 must be 64 lowercase hex characters")

    def payload(self) -> bytes:
        """The canonical bytes that are signed."""
        document = {"type": RECEIPT_TYPE, "v": RECEIPT_VERSION, **asdict(self)}
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @classmethod
    def from_payload(cls, payload: bytes) -> ReceiptFields:
        """Fields back from signed bytes; refuses anything that is not exactly a canonical payload."""
        try:
            document = json.loads(payload.decode("ascii"))
            kind, version = document.pop("type"), document.pop("v")
            fields = cls(**document)
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError):
            raise ReceiptInvalid("receipt payload is not a crowdquant receipt") from None
        if kind != RECEIPT_TYPE or version != RECEIPT_VERSION or fields.payload() != payload:
            raise ReceiptInvalid("receipt payload is not a canonical crowdquant receipt of version 1")
        return fields


@dataclass(frozen=True)
class Receipt:
    fields: ReceiptFields
    signature: bytes  # 64 bytes, Ed25519 over ``fields.payload()``

    @property
    def payload(self) -> bytes:
        """The signed bytes (``signed_payload`` in the proto)."""
        return self.fields.payload()


def sign_receipt(
    key: Ed25519PrivateKey,
    *,
    tournament_id: str,
    round_number: int,
    model_id: str,
    version: int,
    content_sha256: str,
    row_count: int,
    accept_time: datetime,
) -> Receipt:
    """Sign what was accepted; ``key_id`` is filled in from the key."""
    fields = ReceiptFields(
        tournament_id,
        round_number,
        model_id,
        version,
        content_sha256,
        row_count,
        rfc3339(accept_time),
        key_id(key),
    )
    fields.validate()
    return Receipt(fields, key.sign(fields.payload()))


def verify_receipt(public_key: Ed25519PublicKey, receipt: Receipt, signed_payload: bytes | None = None) -> None:
    """Raise ``ReceiptInvalid`` unless ``receipt`` was signed by ``public_key`` exactly as it reads.

    ``signed_payload``, when the receipt came with one (proto ``signed_payload``), must be exactly
    the canonical payload of the fields, so shown fields and signed bytes can't disagree.
    """
    expected = key_id(public_key)
    if receipt.fields.key_id != expected:
        raise ReceiptInvalid(
            f"receipt names signing key {receipt.fields.key_id!r}, but the given public key is {expected!r}"
        )
    payload = receipt.fields.payload()
    if signed_payload is not None and signed_payload != payload:
        shown = ReceiptFields.from_payload(signed_payload)
        differ = [name for name in asdict(shown) if getattr(shown, name) != getattr(receipt.fields, name)]
        raise ReceiptInvalid(f"receipt fields differ from the signed payload: {', '.join(differ) or 'encoding'}")
    try:
        public_key.verify(receipt.signature, payload)
    except InvalidSignature:
        raise ReceiptInvalid(
            "receipt signature does not verify: a field was altered or another key signed it"
        ) from None
