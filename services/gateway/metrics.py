"""A few Prometheus metrics, written in the text exposition format by hand (no dependency).

Labels are bounded: routes are templates (``/models/{model_id}``), never raw paths.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels)
    return "{" + body + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] += amount

    def add(self, labels: Labels, amount: float = 1.0) -> None:
        """``inc`` for a hot path: ``labels`` already sorted by name."""
        self.values[labels] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in sorted(self.values.items())]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = defaultdict(float)

    def observe(self, value: float, **labels: str) -> None:
        self.record(value, tuple(sorted(labels.items())))

    def record(self, value: float, key: Labels) -> None:
        """``observe`` for a hot path: ``key`` already sorted by label name."""
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * (len(self.buckets) + 1)
        counts[bisect_left(self.buckets, value)] += 1
        self.sums[key] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f"{self.name}_bucket{_labels((*key, ('le', le)))} {running}")
            lines.append(f"{self.name}_sum{_labels(key)} {self.sums[key]:g}")
            lines.append(f"{self.name}_count{_labels(key)} {running}")
        return lines


class GatewayMetrics:
    """The gateway's metrics; ``render`` is what /metrics serves."""

    def __init__(self) -> None:
        self.requests = Counter("crowdquant_gateway_requests_total", "HTTP requests by route and status.")
        self.duration = Histogram("crowdquant_gateway_request_duration_seconds", "Time to answer, by route.")
        self.rate_limited = Counter("crowdquant_gateway_rate_limited_total", "Requests refused with 429.")
        self.upstream = Counter("crowdquant_gateway_upstream_calls_total", "Calls to the leaderboard by rpc and code.")
        self.cache = Counter("crowdquant_gateway_cache_total", "Answers served from the response cache or not.")

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.duration, self.rate_limited, self.upstream, self.cache):
            lines += metric.render()
        return "\n".join(lines) + "\n"
