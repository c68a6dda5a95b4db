"""A service's view of its peers: one lazily opened channel per peer, its stubs, and calls that carry
the service's own key, a deadline and retries on transient failures.

Each service's ``Peers`` declares the services it calls (``CALLS``); a stub of any other service is
refused, and ``tests/unit/deploy/test_dependencies.py`` checks that the declarations form the
pipeline's acyclic graph and that no service's code reaches a contract it does not declare.
Channels open on first use, so a peer address set after start-up (tests, the demo) is honoured.
"""

from __future__ import annotations

from typing import Any, ClassVar

import grpc

from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc as lb_grpc
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as sub_grpc
from shared.config import CommonSettings
from shared.rpc.client import call_with_retry, open_channel


class UndeclaredPeer(RuntimeError):
    """A service reached for a peer its ``Peers.CALLS`` does not name."""


class PeerChannels:
    #: The services this service calls; declared by each service's ``Peers``.
    CALLS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}

    @property
    def key(self) -> str | None:
        return self.settings.service_api_key.get_secret_value() if self.settings.service_api_key else None

    def _channel(self, peer: str) -> grpc.aio.Channel:
        if peer not in self.CALLS:
            raise UndeclaredPeer(f"{type(self).__module__} does not declare {peer!r} in CALLS {self.CALLS}")
        addr = self.settings.peer_addr(peer)
        channel = self._channels.get(addr)
        if channel is None:
            channel = self._channels[addr] = open_channel(addr)
        return channel

    @property
    def submissions(self) -> sub_grpc.SubmissionsServiceStub:
        return sub_grpc.SubmissionsServiceStub(self._channel("submissions"))

    @property
    def identity(self) -> id_grpc.IdentityServiceStub:
        return id_grpc.IdentityServiceStub(self._channel("submissions"))

    @property
    def scoring(self) -> sc_grpc.ScoringServiceStub:
        return sc_grpc.ScoringServiceStub(self._channel("scoring"))

    @property
    def leaderboard(self) -> lb_grpc.LeaderboardServiceStub:
        return lb_grpc.LeaderboardServiceStub(self._channel("leaderboard"))

    @property
    def payouts(self) -> po_grpc.PayoutsServiceStub:
        return po_grpc.PayoutsServiceStub(self._channel("payouts"))

    async def unary(self, fn: Any, request: Any, deadline: float | None = None, attempts: int = 4) -> Any:
        """A unary call with this service's key and a deadline; domain errors on failure."""
        return await call_with_retry(
            fn, request, api_key=self.key, deadline=deadline or self.settings.rpc_deadline_seconds, attempts=attempts
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
