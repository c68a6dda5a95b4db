"""API keys, principals and the access policy, shared by every service.

A key is ``<key id>.<secret>``: the id is public and indexes the stored record; the secret is 32
random bytes shown once and stored only as a salted scrypt hash, compared in constant time.
Any service authenticates a caller without reading another service's tables: submissions owns
the keys and answers ``IdentityService.Authenticate``; the others ask it and cache the answer for
at most ``CROWDQUANT_AUTH_CACHE_SECONDS`` (under 60 s, so a revoked key stops working within a minute).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from shared.errors import InvalidArgument, PermissionDenied, Unauthenticated


class Role(StrEnum):
    PARTICIPANT = "participant"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    SERVICE = "service"


ANONYMOUS = "anonymous"


class ServiceName(StrEnum):
    """The services that call each other; each has its own ``service`` key naming it."""

    SUBMISSIONS = "submissions"
    SCORING = "scoring"
    LEADERBOARD = "leaderboard"
    PAYOUTS = "payouts"

    @property
    def identity(self) -> str:
        """How access rules name this service: ``service:<name>``."""
        return f"{Role.SERVICE}:{self.value}"


def describe_identity(identity: str) -> str:
    """``service:scoring`` -> ``the scoring service``, ``operator`` -> ``role operator`` (error messages)."""
    role, _, name = identity.partition(":")
    if role == Role.SERVICE and name:
        return f"the {name} service"
    if identity == Role.SERVICE:
        return "a service key naming no service"
    return f"role {identity}"


class Scope(StrEnum):
    """What a key may do within its role; every RPC needs exactly one (its access rule names it).

    The role says which RPCs a key may reach at all; scopes narrow a key below its role, e.g. a
    read-only key for a dashboard, or an upload-only key on a training box.
    """

    READ = "read"  # every call that changes nothing
    SUBMIT = "submit"  # create models and upload predictions
    STAKE = "stake"  # stakes and payout addresses: where a participant's money goes
    KEYS = "keys"  # create and revoke API keys (never beyond the creating key's own scopes)
    OPERATE = "operate"  # run the tournament: participants, rounds, scoring, publishing, payouts


ROLE_SCOPES: dict[Role, tuple[Scope, ...]] = {
    Role.PARTICIPANT: (Scope.READ, Scope.SUBMIT, Scope.STAKE, Scope.KEYS),
    Role.OPERATOR: tuple(Scope),
    Role.AUDITOR: (Scope.READ,),
    Role.SERVICE: (Scope.READ, Scope.OPERATE),
}
KNOWN_SCOPES = frozenset(s.value for s in Scope)

KEY_ID_PREFIX = "k_"
_KEY_RE = re.compile(r"^(k_[0-9a-f]{12})\.([A-Za-z0-9_\-]{43})$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its role, the participant or service it belongs to (if any), its scopes."""

    key_id: str
    role: Role
    participant_id: str = ""
    scopes: tuple[str, ...] = field(default_factory=tuple)
    service_name: str = ""

    @property
    def identity(self) -> str:
        """What access rules match: the role, or ``service:<name>`` for a service's own key.

        A ``service`` key that names no service (made before services had their own keys) matches
        no rule: every service now calls with its own key and may call only what it needs.
        """
        if self.role is Role.SERVICE and self.service_name:
            return f"{Role.SERVICE}:{self.service_name}"
        return str(self.role)

    @property
    def granted(self) -> frozenset[str]:
        """The scopes this key may use: its own within its role's; none stored = all of its role's."""
        allowed = {s.value for s in ROLE_SCOPES[self.role]}
        return frozenset(allowed & set(self.scopes)) if self.scopes else frozenset(allowed)

    @property
    def subject(self) -> str:
        """The idempotency scope: a participant's (or a service's) requests never collide with another's."""
        if self.participant_id:
            return f"participant:{self.participant_id}"
        return self.identity if self.service_name else f"role:{self.role}"


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str
    salt: bytes
    secret_hash: bytes

    @property
    def full(self) -> str:
        return f"{self.key_id}.{self.secret}"


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)


def generate_key() -> NewKey:
    key_id = KEY_ID_PREFIX + secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    salt = secrets.token_bytes(16)
    return NewKey(key_id=key_id, secret=secret, salt=salt, secret_hash=hash_secret(secret, salt))


def split_key(api_key: str) -> tuple[str, str]:
    """Split ``<key id>.<secret>``; a malformed key is UNAUTHENTICATED without saying more."""
    match = _KEY_RE.match(api_key.strip())
    if not match:
        raise Unauthenticated("malformed API key: expected '<key id>.<secret>' as issued by crowdquant")
    return match.group(1), match.group(2)


def secret_matches(secret: str, salt: bytes, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret, salt), stored_hash)


def check_scopes(role: Role, scopes: list[str] | tuple[str, ...], creator: Principal | None = None) -> tuple[str, ...]:
    """The scopes of a new key of ``role``: unknown names or ones beyond the role are INVALID_ARGUMENT.

    None asked = all of the role's scopes, narrowed to the creating key's own. A key never makes a
    key with a scope it lacks itself (PERMISSION_DENIED), so a read-only key can't mint a broader one.
    """
    role_scopes = tuple(s.value for s in ROLE_SCOPES[role])
    asked = tuple(dict.fromkeys(scopes))
    unknown = sorted(set(asked) - KNOWN_SCOPES)
    if unknown:
        raise InvalidArgument(
            f"scopes: unknown scope(s) {', '.join(s[:40] for s in unknown)}; "
            f"known: {', '.join(s.value for s in Scope)}",
            metadata={"field": "scopes"},
        )
    beyond = [s for s in asked if s not in role_scopes]
    if beyond:
        raise InvalidArgument(
            f"scopes: {', '.join(beyond)} not available to a {role} key; "
            f"a {role} key may hold {', '.join(role_scopes)}",
            metadata={"field": "scopes"},
        )
    if creator is None:
        return asked or role_scopes
    if not asked:
        asked = tuple(s for s in role_scopes if s in creator.granted) or role_scopes
    missing = [s for s in asked if s not in creator.granted]
    if missing:
        raise PermissionDenied(
            f"scopes: this key lacks {', '.join(missing)}; a key may only create keys within "
            f"its own scopes ({', '.join(sorted(creator.granted))})",
            reason="SCOPE_BEYOND_CREATOR",
            metadata={"field": "scopes"},
        )
    return asked


def check_service_name(role: Role, service_name: str) -> str:
    """A ``service`` key must name one service; other roles name none."""
    if role is not Role.SERVICE:
        if service_name:
            raise InvalidArgument(f"service_name must be empty for a {role} key", metadata={"field": "service_name"})
        return ""
    names = ", ".join(n.value for n in ServiceName)
    if not service_name:
        raise InvalidArgument(
            f"service_name is required for a service key: one of {names}", metadata={"field": "service_name"}
        )
    if service_name not in {n.value for n in ServiceName}:
        raise InvalidArgument(
            f"service_name: unknown service {service_name[:40]!r}; one of {names}", metadata={"field": "service_name"}
        )
    return service_name


def key_from_metadata(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
    """The API key of a call: ``authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    for name, value in metadata or ():
        if isinstance(value, bytes):
            continue
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
        elif name == "x-api-key" and value:
            return value.strip()
    return None
