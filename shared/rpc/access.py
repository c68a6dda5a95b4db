"""Who may call which RPC. Unlisted methods are denied; health and reflection are public.

A rule is a set of identities: roles (``participant``, ``operator``, ``auditor``), ``anonymous``
for a public method (then anyone may call it, with or without a key), and one service's own
identity, ``ServiceName.X.identity`` (``service:scoring``): each internal call is open only to the
services that make it, never to every service key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.auth import ANONYMOUS, Principal, describe_identity
from shared.errors import PermissionDenied

PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")


class AccessPolicy:
    def __init__(self) -> None:
        self._rules: dict[str, frozenset[str]] = {}

    def add(self, service_full_name: str, rules: Mapping[str, Iterable[str]]) -> None:
        for rpc, identities in rules.items():
            self._rules[f"/{service_full_name}/{rpc}"] = frozenset(str(i) for i in identities)

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
            raise PermissionDenied(f"{describe_identity(who.identity)} may not call {rpc}; allowed: {names}",
                                   metadata={"allowed": ",".join(sorted(self.allowed(method)))})

    def methods(self) -> dict[str, frozenset[str]]:
        return dict(self._rules)
