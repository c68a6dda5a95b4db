"""Small in-memory limiters: failed authentications per key id and per peer."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class FailureLimiter:
    """Allow at most ``max_failures`` failures per subject within ``window`` seconds."""

    def __init__(self, max_failures: int = 20, window: float = 60.0, max_subjects: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
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

    def __init__(self, rate: float, burst: float, max_subjects: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
