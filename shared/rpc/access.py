"""Who may call which RPC. Unlisted methods are denied; health and reflection are public.

A rule is a set of identities: roles (``participant``, ``operator``, ``auditor``), ``anonymous``
for a public method (then anyone may call it, with or without a key), and one service's own
identity, ``ServiceName.X.identity`` (``service:scoring``): each internal call is open only to the
services that make it, never to every service key.

Each RPC also names the one scope (``shared.auth.Scope``) a key needs for it: the role opens the
RPC, the scope lets a narrower key of that role through (a ``read`` key reads and does nothing else).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.auth import ANONYMOUS, Principal, Scope, describe_identity
from shared.errors import PermissionDenied

PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


class AccessPolicy:
    def __init__(self) -> None:
        self._rules: dict[str, frozenset[str]] = {}
        self._scopes: dict[str, Scope] = {}

    def add(self, service_full_name: str, rules: Mapping[str, Iterable[str]], scopes: Mapping[str, Scope]) -> None:
        """Register a service's rules; every RPC but the public ones must name its scope."""
        for rpc, identities in rules.items():
            method = f"/{service_full_name}/{rpc}"
            self._rules[method] = frozenset(str(i) for i in identities)
            if rpc in scopes:
                self._scopes[method] = Scope(scopes[rpc])
            elif ANONYMOUS not in self._rules[method]:
                raise ValueError(f"{service_full_name}.{rpc} has an access rule but no scope")

    def scope(self, method: str) -> Scope | None:
        """The scope a key needs for ``method`` (None for a public method: any key or none)."""
        return self._scopes.get(method)

    def is_public(self, method: str) -> bool:
        return method.startswith(PUBLIC_SERVICES) or ANONYMOUS in self._rules.get(method, ())

    def allowed(self, method: str) -> frozenset[str]:
        return self._rules.get(method, frozenset())

    def permits(self, method: str, identity: str) -> bool:
        allowed = self.allowed(method)
        return ANONYMOUS in allowed or identity in allowed

    def check(self, method: str, who: Principal) -> None:
        if not self.permits(method, who.identity):
            rpc = method.rsplit("/", 1)[-1]
            names = ", ".join(describe_identity(i) for i in sorted(self.allowed(method))) or "nobody"
            raise PermissionDenied(
                f"{describe_identity(who.identity)} may not call {rpc}; allowed: {names}",
                metadata={"allowed": ",".join(sorted(self.allowed(method)))},
            )
        needed = self.scope(method)
        if needed is not None and ANONYMOUS not in self.allowed(method) and needed not in who.granted:
            rpc = method.rsplit("/", 1)[-1]
            raise PermissionDenied(
                f"this API key lacks the {needed} scope that {rpc} needs; its scopes: "
                f"{', '.join(sorted(who.granted)) or 'none'}",
                reason="SCOPE_MISSING",
                metadata={"scope": str(needed)},
            )

    def methods(self) -> dict[str, frozenset[str]]:
        return dict(self._rules)
