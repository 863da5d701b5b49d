"""Prometheus metrics of one app instance (own registry, so several apps can live in one process).

Several worker processes (`promptpress serve --workers N`) share their metrics through
prometheus_client's multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set before the workers start,
each writes its values to files there and /metrics, whichever worker answers it, reports the sum over
all of them (requests in flight: over the live ones). The segment cache's counters are the answering
worker's own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from promptpress.cache import CacheStats

log = logging.getLogger("promptpress.service")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_COMPRESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class StatsSource(Protocol):
    """What the metrics read of a cache: a `SegmentCache`, or anything whose ``stats()`` gives its
    counters by name."""

    def stats(self) -> CacheStats | Mapping[str, int]: ...


def cache_down(cache: object) -> bool:
    """True while a fail-open cache's store is unreachable (its circuit breaker is open: calls are
    served as misses until a retry succeeds)."""
    breaker = getattr(cache, "breaker", None)
    return bool(getattr(breaker, "is_open", False))


class CacheCollector(Collector):
    """Exports the segment cache's counters (``stats()``: hits, misses, errors, bytes...) at scrape
    time. Tolerates a cache without ``stats`` or one whose ``stats`` fails."""

    def __init__(self, get_cache: Callable[[], StatsSource | None]) -> None:
        self._get_cache = get_cache

    def collect(self) -> Iterator[Metric]:
        cache = self._get_cache()
        if cache is None or not hasattr(cache, "stats"):
            return
        try:
            stats = cache.stats()
            values = stats.to_dict() if isinstance(stats, CacheStats) else dict(stats)
        except Exception as exc:  # a broken cache must not break /metrics
            log.warning("cache stats unavailable: %s", exc)
            yield GaugeMetricFamily(
                "promptpress_cache_up", "1 if the cache answered stats() and is reachable", value=0
            )
            return
        up = 0 if cache_down(cache) else 1
        yield GaugeMetricFamily(
            "promptpress_cache_up", "1 if the cache answered stats() and is reachable", value=up
        )
        for name, value in sorted(values.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                yield CounterMetricFamily(f"promptpress_cache_{name}", f"segment cache {name}", value=value)


class Metrics:
    def __init__(self, get_cache: Callable[[], StatsSource | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "promptpress_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "promptpress_request_duration_seconds",
            "Time from request to the last response byte",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "promptpress_upstream_response_seconds",
            "Time until the upstream's response headers",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "promptpress_upstream_errors", "Upstream failures by kind", ["kind"], registry=r
        )
        self.compressions = Counter(
            "promptpress_compressions", "Compression outcomes of requests", ["outcome"], registry=r
        )
        self.compression_seconds = Histogram(
            "promptpress_compression_seconds",
            "Time spent compressing one request (in the worker)",
            buckets=_COMPRESS_BUCKETS,
            registry=r,
        )
        self.tokens_original = Counter(
            "promptpress_tokens_original", "Tokens of the texts given to the compressor", registry=r
        )
        self.tokens_compressed = Counter(
            "promptpress_tokens_compressed", "Tokens of those texts after compression", registry=r
        )
        self.tokens_saved = Counter("promptpress_tokens_saved", "Tokens removed by compression", registry=r)
        self.inflight = Gauge(
            "promptpress_requests_in_flight",
            "Requests being handled",
            multiprocess_mode="livesum",
            registry=r,
        )
        self._cache_collector = CacheCollector(get_cache)
        r.register(self._cache_collector)
        # labelled children, kept: `labels()` validates and locks on every call, a dict lookup does not
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._upstream_latency: dict[str, Histogram] = {}
        self._outcomes: dict[str, Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def upstream_latency_of(self, route: str) -> Histogram:
        """`upstream_latency` of `route`."""
        child = self._upstream_latency.get(route)
        if child is None:
            child = self._upstream_latency[route] = self.upstream_latency.labels(route)
        return child

    def count_compression(self, outcome: str) -> None:
        """Count one request's compression `outcome` (applied, skipped, disabled, failed...)."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.compressions.labels(outcome)
        child.inc()

    def record_tokens(self, original: int, compressed: int) -> None:
        self.tokens_original.inc(original)
        self.tokens_compressed.inc(compressed)
        self.tokens_saved.inc(max(original - compressed, 0))

    def render(self) -> bytes:
        if not multiprocess():
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self._cache_collector)
        return generate_latest(registry)


def multiprocess() -> bool:
    """True when prometheus_client keeps its values in ``PROMETHEUS_MULTIPROC_DIR`` (decided when it was
    first imported)."""
    return values.ValueClass is not values.MutexValue


def release_process() -> None:
    """Drop this process's live gauges (requests in flight) from the shared directory: call it when a
    worker process stops."""
    if multiprocess():
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(os.getpid())
