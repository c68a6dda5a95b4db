"""Unit tests of the shared runtime: config, keys, pagination, redaction, limits, status mapping."""

from __future__ import annotations

import asyncio
import json
import logging

import grpc
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from crowdquant.submissions.v1 import identity_service_pb2 as pb
from shared import errors
from shared.auth import (
    Principal,
    Role,
    check_scopes,
    generate_key,
    key_from_metadata,
    secret_matches,
    split_key,
)
from shared.config import ConfigError, SubmissionsBaseSettings, load_settings
from shared.idempotency import check_request_id, fingerprint
from shared.logging import REDACTED, configure_logging, redact_secrets
from shared.pagination import decode_token, encode_token, page_size
from shared.rpc.authn import CachingAuthenticator, client_source
from shared.rpc.ratelimit import FailureLimiter
from shared.rpc.status import to_status


def test_settings_defaults_and_errors(monkeypatch):
    s = load_settings(SubmissionsBaseSettings)
    assert s.port == 50051 and s.database_url is None
    monkeypatch.setenv("CROWDQUANT_SUBMISSIONS_PORT", "99999")
    with pytest.raises(ConfigError, match="CROWDQUANT_SUBMISSIONS_PORT"):
        load_settings(SubmissionsBaseSettings)
    monkeypatch.setenv("CROWDQUANT_SUBMISSIONS_PORT", "6000")
    monkeypatch.setenv("CROWDQUANT_SERVICE_API_KEY", "k_x.supersecret")
    monkeypatch.setenv("CROWDQUANT_GRACE_SECONDS", "-1")
    with pytest.raises(ConfigError, match="CROWDQUANT_GRACE_SECONDS"):
        load_settings(SubmissionsBaseSettings)
    monkeypatch.delenv("CROWDQUANT_GRACE_SECONDS")
    s = load_settings(SubmissionsBaseSettings)
    assert s.port == 6000 and "supersecret" not in repr(s)


def test_keys_round_trip_and_constant_format():
    new = generate_key()
    key_id, secret = split_key(new.full)
    assert key_id == new.key_id and secret == new.secret
    assert secret_matches(secret, new.salt, new.secret_hash)
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), new.salt, new.secret_hash)
    assert new.secret.encode() not in new.secret_hash
    for bad in ("", "abc", new.key_id, new.full + "x", "k_ZZZZZZZZZZZZ." + secret):
        with pytest.raises(errors.Unauthenticated):
            split_key(bad)


def test_scopes_default_and_unknown():
    assert check_scopes(Role.AUDITOR, []) == ("read",)
    with pytest.raises(errors.InvalidArgument, match="nope"):
        check_scopes(Role.OPERATOR, ["read", "nope"])


def test_key_from_metadata():
    assert key_from_metadata((("authorization", "Bearer k_1.x"),)) == "k_1.x"
    assert key_from_metadata((("x-api-key", "k_2.y"),)) == "k_2.y"
    assert key_from_metadata((("authorization", "Basic abc"),)) is None
    assert key_from_metadata(None) is None


@given(st.integers(min_value=-(2**31), max_value=2**31))
def test_page_size_rules(requested):
    if requested < 0:
        with pytest.raises(errors.InvalidArgument):
            page_size(requested)
    else:
        assert 1 <= page_size(requested) <= 1000


@given(st.one_of(st.text(), st.integers(), st.lists(st.integers())))
def test_page_tokens_round_trip_and_bind_filters(position):
    token = encode_token(position, {"round": 3})
    assert decode_token(token, {"round": 3}) == position
    with pytest.raises(errors.InvalidArgument, match="other filters"):
        decode_token(token, {"round": 4})


@given(st.text())
def test_garbage_tokens_are_invalid_argument(token):
    if not token:
        assert decode_token(token) is None
        return
    try:
        decode_token(token)
    except errors.InvalidArgument:
        pass


def test_redaction_of_secret_keys_and_key_shaped_values():
    key = generate_key().full
    event = redact_secrets(
        None,
        "info",
        {
            "event": f"got {key}",
            "api_key": "abc",
            "password": "p",
            "nested": {"wallet_secret": "s", "ok": key},
            "key_id": "k_1",
        },
    )
    text = json.dumps(event)
    assert key not in text and "abc" not in text and '"p"' not in text
    assert event["key_id"] == "k_1" and event["api_key"] == REDACTED


def test_logging_lines_are_json_with_service(capsys):
    configure_logging("scoring", "info", "json")
    structlog.contextvars.bind_contextvars(request_id="r1", rpc="/x/Y")
    structlog.get_logger().info("hello", secret="s3cr3t")
    logging.getLogger("grpc").warning("from stdlib")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines[0]["service"] == "scoring" and lines[0]["request_id"] == "r1" and lines[0]["secret"] == REDACTED
    assert lines[0]["timestamp"].endswith("Z") and lines[0]["level"] == "info"
    assert lines[1]["event"] == "from stdlib" and lines[1]["service"] == "scoring"
    structlog.contextvars.clear_contextvars()


def test_idempotency_fingerprint_ignores_request_id():
    a = pb.CreateParticipantRequest(request_id="1", display_name="x")
    b = pb.CreateParticipantRequest(request_id="2", display_name="x")
    c = pb.CreateParticipantRequest(request_id="1", display_name="y")
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    assert a.request_id == "1"
    for bad in ("", " ", "x" * 129, "a\nb"):
        with pytest.raises(errors.InvalidArgument, match="request_id"):
            check_request_id(bad)


def test_failure_limiter_window():
    now = [0.0]
    limiter = FailureLimiter(max_failures=3, window=10, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.blocked_for("k") == 0
        limiter.record_failure("k")
    assert limiter.blocked_for("k") == pytest.approx(10)
    now[0] = 10.5
    assert limiter.blocked_for("k") == 0


def test_caching_authenticator_ttl_and_failure_limit():
    now = [0.0]
    calls = []
    key = generate_key()
    who = Principal(key_id=key.key_id, role=Role.OPERATOR)

    async def verify(api_key: str, source: str) -> Principal:
        calls.append(api_key)
        if api_key != key.full:
            raise errors.Unauthenticated("API key not recognised")
        return who

    auth = CachingAuthenticator(
        verify, ttl=30, clock=lambda: now[0], limiter=FailureLimiter(max_failures=2, window=60, clock=lambda: now[0])
    )

    async def scenario() -> None:
        assert await auth.authenticate(key.full, "1.2.3.4") is who
        assert await auth.authenticate(key.full, "1.2.3.4") is who
        assert len(calls) == 1
        now[0] = 31
        await auth.authenticate(key.full, "1.2.3.4")
        assert len(calls) == 2
        auth.invalidate_key(key.key_id)
        await auth.authenticate(key.full, "1.2.3.4")
        assert len(calls) == 3
        wrong = f"{key.key_id}.{'B' * 43}"
        for _ in range(2):
            with pytest.raises(errors.Unauthenticated):
                await auth.authenticate(wrong, "9.9.9.9")
        with pytest.raises(errors.ResourceExhausted, match="retry in"):
            await auth.authenticate(wrong, "9.9.9.9")

    asyncio.run(scenario())


def test_failure_limits_hit_the_guesser_not_the_owner():
    """Per (key id, source) and per source, never per key id; a key proven lately skips the limits."""
    now = [0.0]
    owner, stranger_key = generate_key(), generate_key()
    principals = {
        k.full: Principal(key_id=k.key_id, role=Role.PARTICIPANT, participant_id="p") for k in (owner, stranger_key)
    }

    async def verify(api_key: str, source: str) -> Principal:
        if api_key not in principals:
            raise errors.Unauthenticated("API key not recognised")
        return principals[api_key]

    auth = CachingAuthenticator(
        verify, ttl=0, clock=lambda: now[0], limiter=FailureLimiter(max_failures=20, window=60, clock=lambda: now[0])
    )
    guess = f"{owner.key_id}.{'C' * 43}"

    async def scenario() -> None:
        for _ in range(20):
            with pytest.raises(errors.Unauthenticated):
                await auth.authenticate(guess, "203.0.113.9")
        for _ in range(30):  # the stranger is throttled without costing a verification...
            with pytest.raises(errors.ResourceExhausted):
                await auth.authenticate(guess, "203.0.113.9")
        with pytest.raises(errors.ResourceExhausted):  # ... even with a key of its own
            await auth.authenticate(stranger_key.full, "203.0.113.9")
        # the owner, never seen before, from its own address: its key id's failures don't matter
        assert (await auth.authenticate(owner.full, "198.51.100.7")).key_id == owner.key_id
        # once proven, the owner passes even from the stranger's address (a NAT, loopback)
        assert (await auth.authenticate(owner.full, "203.0.113.9")).key_id == owner.key_id
        now[0] = 61  # the budget refills
        assert (await auth.authenticate(stranger_key.full, "203.0.113.9")).key_id == stranger_key.key_id

    asyncio.run(scenario())


def test_client_source_drops_the_port_and_keeps_an_ipv6_64():
    assert client_source("ipv4:203.0.113.9:51000") == "203.0.113.9"
    assert client_source("ipv6:[2001:db8:1:2:aaaa::1]:443") == "2001:db8:1:2::/64"
    assert client_source("ipv6:[2001:db8:1:2:bbbb::7]:9") == client_source("ipv6:[2001:db8:1:2:aaaa::1]:443")
    assert client_source("unix:/tmp/x") == "unix:/tmp/x"
    assert client_source("") == "unknown"


def test_status_carries_error_info():
    status = to_status(grpc.StatusCode.NOT_FOUND, "round 3 not found", "ROUND_NOT_FOUND", {"round": "3"})
    assert status.code == grpc.StatusCode.NOT_FOUND and status.details == "round 3 not found"
    assert any(k == "grpc-status-details-bin" for k, _ in status.trailing_metadata)


def test_secret_files_fill_unset_variables(tmp_path):
    from shared.config import read_secret_files

    secret = tmp_path / "key"
    secret.write_text("k_abc.def\n")
    env = {
        "CROWDQUANT_SERVICE_API_KEY_FILE": str(secret),
        "DATABASE_URL": "postgresql://x/y",
        "DATABASE_URL_FILE": str(tmp_path / "missing"),
    }
    read_secret_files(env)
    assert env["CROWDQUANT_SERVICE_API_KEY"] == "k_abc.def"
    assert env["DATABASE_URL"] == "postgresql://x/y"
    with pytest.raises(ConfigError, match="CROWDQUANT_WALLET_SECRET_FILE"):
        read_secret_files({"CROWDQUANT_WALLET_SECRET_FILE": str(tmp_path / "nope")})


def test_page_tokens_are_signed_and_forgeries_are_invalid_argument():
    import base64
    import json

    from shared import pagination
    from shared.errors import InvalidArgument

    pagination.configure("a secret shared by the replicas")
    token = pagination.encode_token(42, ["models", "t"])
    assert pagination.decode_token(token, ["models", "t"]) == 42
    body = base64.urlsafe_b64encode(json.dumps({"p": {"x": [1]}, "f": "0" * 12}).encode()).decode().rstrip("=")
    forged = [body, body + "." + token.split(".")[1], token[:-2] + "AA", "\udcff", "%%%", "." * 40, token + "x"]
    for bad in forged:
        with pytest.raises(InvalidArgument, match="page_token"):
            pagination.decode_token(bad, ["models", "t"])
    pagination.configure("another deployment's secret")
    with pytest.raises(InvalidArgument, match="page_token"):
        pagination.decode_token(token, ["models", "t"])
