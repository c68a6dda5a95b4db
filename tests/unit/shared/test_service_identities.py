"""Service identities: what a principal matches in the access rules, and who may hold a service name."""

from __future__ import annotations

import pytest

from shared.auth import ANONYMOUS, Principal, Role, Scope, ServiceName, check_service_name
from shared.errors import InvalidArgument, PermissionDenied
from shared.rpc.access import AccessPolicy

SCORING = ServiceName.SCORING.identity


def policy() -> AccessPolicy:
    p = AccessPolicy()
    p.add(
        "x.v1.Svc",
        {"Targets": {SCORING}, "Publish": {Role.OPERATOR}, "Public": {ANONYMOUS, Role.PARTICIPANT}},
        {"Targets": Scope.READ, "Publish": Scope.OPERATE},
    )
    return p


def test_a_service_key_matches_only_its_own_service() -> None:
    scoring = Principal(key_id="k_1", role=Role.SERVICE, service_name="scoring")
    payouts = Principal(key_id="k_2", role=Role.SERVICE, service_name="payouts")
    nameless = Principal(key_id="k_3", role=Role.SERVICE)
    assert scoring.identity == "service:scoring" and nameless.identity == "service"
    p = policy()
    p.check("/x.v1.Svc/Targets", scoring)
    for who, text in (
        (payouts, "the payouts service"),
        (nameless, "a service key naming no service"),
        (Principal(key_id="k_4", role=Role.OPERATOR), "role operator"),
    ):
        with pytest.raises(PermissionDenied) as info:
            p.check("/x.v1.Svc/Targets", who)
        assert info.value.message == f"{text} may not call Targets; allowed: the scoring service"
    with pytest.raises(PermissionDenied, match="allowed: nobody"):
        p.check("/x.v1.Svc/Unlisted", scoring)
    p.check("/x.v1.Svc/Public", payouts)  # a public method is open to every caller, with or without a key


def test_services_do_not_share_idempotency_subjects() -> None:
    subjects = {Principal(key_id="k", role=Role.SERVICE, service_name=n.value).subject for n in ServiceName}
    assert len(subjects) == len(ServiceName)
    assert Principal(key_id="k", role=Role.OPERATOR).subject == "role:operator"


@pytest.mark.parametrize(
    ("role", "name", "fails"),
    [
        (Role.SERVICE, "scoring", False),
        (Role.SERVICE, "", True),
        (Role.SERVICE, "gateway", True),
        (Role.OPERATOR, "scoring", True),
        (Role.PARTICIPANT, "", False),
    ],
)
def test_service_name_is_required_for_service_keys_only(role: Role, name: str, fails: bool) -> None:
    if fails:
        with pytest.raises(InvalidArgument) as info:
            check_service_name(role, name)
        assert info.value.metadata == {"field": "service_name"}
    else:
        assert check_service_name(role, name) == name
