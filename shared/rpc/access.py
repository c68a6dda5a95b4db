"""Which roles may call which RPC. Unlisted methods are denied; health and reflection are public."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.auth import ANONYMOUS, Role
from shared.errors import PermissionDenied

PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")
ANYONE = frozenset({ANONYMOUS, *Role})
AUTHENTICATED = frozenset(Role)


class AccessPolicy:
    def __init__(self) -> None:
        self._rules: dict[str, frozenset[str]] = {}

    def add(self, service_full_name: str, rules: Mapping[str, Iterable[str]]) -> None:
        for rpc, roles in rules.items():
            self._rules[f"/{service_full_name}/{rpc}"] = frozenset(roles)

    def is_public(self, method: str) -> bool:
        return method.startswith(PUBLIC_SERVICES) or ANONYMOUS in self._rules.get(method, ())

    def allowed(self, method: str) -> frozenset[str]:
        return self._rules.get(method, frozenset())

    def check(self, method: str, role: str) -> None:
        allowed = self.allowed(method)
        if role not in allowed:
            rpc = method.rsplit("/", 1)[-1]
            roles = ", ".join(sorted(r for r in allowed if r != ANONYMOUS)) or "no role"
            raise PermissionDenied(f"role {role} may not call {rpc}; allowed: {roles}")

    def methods(self) -> dict[str, frozenset[str]]:
        return dict(self._rules)
