"""Small in-memory limiters: failed authentications per key id and per peer."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class FailureLimiter:
    """Allow at most ``max_failures`` failures per subject within ``window`` seconds."""

    def __init__(
        self,
        max_failures: int = 20,
        window: float = 60.0,
        max_subjects: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.max_failures = max_failures
        self.window = window
        self.max_subjects = max_subjects
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _prune(self, subject: str, now: float) -> deque[float]:
        q = self._failures[subject]
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked_for(self, subject: str) -> float:
        """Seconds until ``subject`` may try again (0 when allowed)."""
        if subject not in self._failures:
            return 0.0
        now = self._clock()
        q = self._prune(subject, now)
        if len(q) < self.max_failures:
            if not q:
                del self._failures[subject]
            return 0.0
        return max(0.0, self.window - (now - q[0]))

    def record_failure(self, subject: str) -> None:
        if len(self._failures) >= self.max_subjects:
            self._failures.clear()
        self._failures[subject].append(self._clock())


class TokenBuckets:
    """Per-subject token buckets: ``rate`` tokens a second up to ``burst`` (e.g. uploads per API key)."""

    def __init__(
        self, rate: float, burst: float, max_subjects: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_subjects = max_subjects
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, subject: str) -> float:
        """Take one token; returns 0 when granted, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.get(subject, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            if len(self._buckets) >= self.max_subjects:
                self._buckets.clear()
            self._buckets[subject] = (tokens - 1, now)
            return 0.0
        self._buckets[subject] = (tokens, now)
        return (1 - tokens) / self.rate if self.rate > 0 else float("inf")


class StreamSlots:
    """Admission of long-lived streams: at most ``per_subject`` open per subject and ``total`` in all.

    Unlike gRPC's ``maximum_concurrent_rpcs`` (which refuses every call once full, health checks
    included), this counts only the streams it guards and refuses only the caller over its share:
    the subject is the participant, not the API key, so extra keys buy no extra streams.
    """

    def __init__(self, per_subject: int, total: int) -> None:
        self.per_subject = per_subject
        self.total = total
        self._open: dict[str, int] = {}
        self._count = 0

    def open_for(self, subject: str) -> int:
        return self._open.get(subject, 0)

    @property
    def in_use(self) -> int:
        return self._count

    def acquire(self, subject: str) -> bool:
        """Take a slot for ``subject``; False (nothing taken) when its share or the total is used up."""
        held = self._open.get(subject, 0)
        if held >= self.per_subject or self._count >= self.total:
            return False
        self._open[subject] = held + 1
        self._count += 1
        return True

    def release(self, subject: str) -> None:
        held = self._open.get(subject, 0)
        if held <= 1:
            self._open.pop(subject, None)
        else:
            self._open[subject] = held - 1
        self._count -= 1 if held else 0
