"""Key scopes: the fixed set, each role's ceiling, keys made within the maker's own, and every RPC's scope."""

from __future__ import annotations

import pytest

from services.leaderboard.api.access import LEADERBOARD, LEADERBOARD_SCOPES
from services.payouts.api.access import LEDGER_AUDIT, LEDGER_AUDIT_SCOPES, PAYOUTS, PAYOUTS_SCOPES
from services.scoring.api.access import SCORING, SCORING_SCOPES
from services.submissions.api import identity, submissions
from shared.auth import ANONYMOUS, Principal, Role, Scope, check_scopes
from shared.errors import InvalidArgument, PermissionDenied
from shared.rpc.access import AccessPolicy

RULES = [
    (identity.ACCESS, identity.SCOPES),
    (submissions.ACCESS, submissions.SCOPES),
    (SCORING, SCORING_SCOPES),
    (LEADERBOARD, LEADERBOARD_SCOPES),
    (PAYOUTS, PAYOUTS_SCOPES),
    (LEDGER_AUDIT, LEDGER_AUDIT_SCOPES),
]
READ_VERBS = ("Get", "List", "Download", "Stream", "Verify", "Export", "Trace", "Reconcile", "Authenticate")


def test_every_rpc_names_a_scope_and_only_reads_need_read() -> None:
    for rules, scopes in RULES:
        for rpc, identities in rules.items():
            if ANONYMOUS in identities:
                continue
            assert rpc in scopes, f"{rpc} has no scope"
            assert (scopes[rpc] is Scope.READ) == rpc.startswith(READ_VERBS), f"{rpc}: {scopes[rpc]}"


def test_a_rule_without_a_scope_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=r"Svc\.Publish has an access rule but no scope"):
        AccessPolicy().add("x.v1.Svc", {"Publish": {Role.OPERATOR}}, {})


def test_the_interceptor_check_needs_the_rpc_scope() -> None:
    policy = AccessPolicy()
    policy.add(
        "x.v1.Svc",
        {"Upload": {Role.PARTICIPANT}, "Read": {Role.PARTICIPANT}, "Public": {ANONYMOUS}},
        {"Upload": Scope.SUBMIT, "Read": Scope.READ},
    )
    reader = Principal(key_id="k_1", role=Role.PARTICIPANT, participant_id="p", scopes=("read",))
    policy.check("/x.v1.Svc/Read", reader)
    policy.check("/x.v1.Svc/Public", reader)
    with pytest.raises(PermissionDenied, match="lacks the submit scope that Upload needs; its scopes: read") as info:
        policy.check("/x.v1.Svc/Upload", reader)
    assert info.value.reason == "SCOPE_MISSING"
    policy.check("/x.v1.Svc/Upload", Principal(key_id="k_2", role=Role.PARTICIPANT, participant_id="p"))


def test_granted_scopes_stay_within_the_role() -> None:
    assert Principal(key_id="k", role=Role.AUDITOR).granted == {"read"}
    assert Principal(key_id="k", role=Role.PARTICIPANT).granted == {"read", "submit", "stake", "keys"}
    # a scope beyond the role, however it got stored, grants nothing
    assert Principal(key_id="k", role=Role.PARTICIPANT, scopes=("read", "operate")).granted == {"read"}


def test_new_keys_stay_within_the_role_and_the_creator() -> None:
    assert check_scopes(Role.PARTICIPANT, []) == ("read", "submit", "stake", "keys")
    assert check_scopes(Role.SERVICE, []) == ("read", "operate")
    for bad, text in (
        (["admin"], "unknown scope"),
        (["launch"], "unknown scope"),
        (["operate"], "not available to a participant key"),
    ):
        with pytest.raises(InvalidArgument, match=text):
            check_scopes(Role.PARTICIPANT, bad)
    maker = Principal(key_id="k", role=Role.PARTICIPANT, participant_id="p", scopes=("read", "keys"))
    assert check_scopes(Role.PARTICIPANT, [], maker) == ("read", "keys")
    assert check_scopes(Role.PARTICIPANT, ["read", "read"], maker) == ("read",)
    with pytest.raises(PermissionDenied, match="lacks submit"):
        check_scopes(Role.PARTICIPANT, ["read", "submit"], maker)
    operator = Principal(key_id="k", role=Role.OPERATOR, scopes=("read", "keys"))
    with pytest.raises(PermissionDenied, match="lacks operate"):  # none asked = the role's, within the maker's
        check_scopes(Role.SERVICE, ["operate"], operator)
    assert check_scopes(Role.SERVICE, [], operator) == ("read",)
