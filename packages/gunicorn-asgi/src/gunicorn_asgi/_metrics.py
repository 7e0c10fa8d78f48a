"""The worker's side of `--metrics-bind`: Prometheus metrics written by each worker, summed by the master.

prometheus_client's multiprocess mode keeps each process's values in memory-mapped files under one directory
(`PROMETHEUS_MULTIPROC_DIR`, made by the master: `_exporter.py`); the exporter in the master reads them all.
Counters and histograms of a worker that has exited stay in their files, so a recycled worker's counts are
kept; gauges are `livesum`/`liveall`, dropped with the process.

Cost: nothing on the request path when off (no observer is installed, no module imported). When on, a
finished request is tallied in plain integers, and the tallies are written to prometheus_client's values from
the heartbeat (every second) and at the worker's exit: each such write takes a lock, a `getpid` and a write to
the memory-mapped file, three of them per request if made one by one (7.4 µs a request, `bench/ops_cost.py`).
So a scrape sees a worker's requests up to a heartbeat late, and a worker killed outright (not retired) loses
its last second. The gauges are set from the heartbeat too.
"""

from __future__ import annotations

import bisect
import importlib
import os
from typing import Any

from asgi_core import AccessRecord, Server

from ._errors import StartupError

NAMESPACE = "gunicorn_asgi"
MISSING = (
    "--metrics-bind needs the prometheus_client package, which is not installed: "
    "pip install 'gunicorn-asgi[metrics]' (or leave --metrics-bind unset)"
)
RECYCLE_REASONS = ("max_requests", "max_worker_memory")
_WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


def import_prometheus(submodule: str = "") -> Any:
    """prometheus_client (or one of its modules), typed loosely: parts of it carry no annotations."""
    try:
        return importlib.import_module("prometheus_client" + (f".{submodule}" if submodule else ""))
    except ImportError:
        raise StartupError(MISSING) from None


class WorkerMetrics:
    """The metrics one worker writes; `observe` is the access-log observer, `beat` runs from the heartbeat."""

    def __init__(self) -> None:
        prometheus = import_prometheus()
        values = import_prometheus("values")
        # An app imported before the fork (--preload) may have loaded prometheus_client before the master set
        # the directory: choose the value class again, so this process writes files the exporter reads.
        values.ValueClass = values.get_value_class()
        counter, gauge, histogram = prometheus.Counter, prometheus.Gauge, prometheus.Histogram
        self.requests = counter(
            "requests",
            "Requests finished (WebSocket sessions counted when they end), by protocol and status class.",
            ["protocol", "status_class"],
            namespace=NAMESPACE,
            registry=None,
        )
        self.duration = histogram(
            "request_duration_seconds",
            "Time from a request's head to the end of its response (HTTP requests and HTTP/2 streams).",
            namespace=NAMESPACE,
            registry=None,
        )
        self.open_connections = gauge(
            "open_connections",
            "Connections held by the workers now.",
            namespace=NAMESPACE,
            registry=None,
            multiprocess_mode="livesum",
        )
        self.websocket_sessions = gauge(
            "websocket_sessions",
            "WebSocket sessions open now.",
            namespace=NAMESPACE,
            registry=None,
            multiprocess_mode="livesum",
        )
        self.rss = gauge(
            "worker_rss_bytes",
            "Resident memory of each live worker (label pid).",
            namespace=NAMESPACE,
            registry=None,
            multiprocess_mode="liveall",
        )
        self.recycles = counter(
            "worker_recycles",
            "Workers retired by the worker itself, by reason (max_requests, max_worker_memory).",
            ["reason"],
            namespace=NAMESPACE,
            registry=None,
        )
        for reason in RECYCLE_REASONS:  # shown at 0 from the start, so a dashboard has a series to plot
            self.recycles.labels(reason)
        self._children: dict[tuple[bool, int], Any] = {}
        # Tallies since the last flush: requests by (websocket, status // 100), durations by histogram bucket.
        self._counts: dict[tuple[bool, int], int] = {}
        # The histogram's bounds and values are not public API: without them (another prometheus_client),
        # each duration is observed at once, as the public `observe` does it.
        bounds = getattr(self.duration, "_upper_bounds", None)
        self._bulk = bounds is not None and hasattr(self.duration, "_buckets") and hasattr(self.duration, "_sum")
        self._bounds: list[float] = list(bounds) if self._bulk and bounds is not None else []
        self._buckets = [0] * len(self._bounds)
        self._duration_sum = 0.0

    def observe(self, record: AccessRecord) -> None:
        websocket = record.scheme in _WEBSOCKET_SCHEMES
        key = (websocket, record.status // 100)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        if websocket:
            return
        duration = record.duration
        if self._bulk:
            # The first bucket whose bound is >= the duration, as Histogram.observe finds it (the last is +Inf).
            self._buckets[bisect.bisect_left(self._bounds, duration)] += 1
            self._duration_sum += duration
        else:
            self.duration.observe(duration)

    def flush(self) -> None:
        """Write the tallies to prometheus_client's values (its files), from the heartbeat and at exit."""
        counts = self._counts
        if counts:
            for key, count in counts.items():
                self._child(key).inc(count)
            counts.clear()
        if self._duration_sum or any(self._buckets):
            duration = self.duration
            for index, count in enumerate(self._buckets):
                if count:
                    duration._buckets[index].inc(count)  # noqa: SLF001 - see __init__
                    self._buckets[index] = 0
            duration._sum.inc(self._duration_sum)  # noqa: SLF001
            self._duration_sum = 0.0

    def _child(self, key: tuple[bool, int]) -> Any:
        child = self._children.get(key)
        if child is None:
            websocket, hundreds = key
            child = self.requests.labels(
                "websocket" if websocket else "http", _STATUS_CLASSES.get(hundreds, "other")
            )
            self._children[key] = child
        return child

    def beat(self, server: Server | None, rss: int, websocket_type: type | None) -> None:
        self.rss.set(rss)
        if server is None:
            return
        self.open_connections.set(server.open_connections)
        if websocket_type is not None:
            sessions = sum(1 for conn in server.context.connections if isinstance(conn, websocket_type))
            self.websocket_sessions.set(sessions)

    def recycled(self, reason: str) -> None:
        self.recycles.labels(reason).inc()

    def close(self) -> None:
        """At the worker's exit: the last tallies are written, and its live gauges leave the sums at once (the
        exporter also prunes dead pids)."""
        self.flush()
        import_prometheus("multiprocess").mark_process_dead(os.getpid())
