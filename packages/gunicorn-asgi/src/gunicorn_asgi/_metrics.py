"""The worker's side of `--metrics-bind`: Prometheus metrics written by each worker, summed by the master.

prometheus_client's multiprocess mode keeps each process's values in memory-mapped files under one directory
(`PROMETHEUS_MULTIPROC_DIR`, made by the master: `_exporter.py`); the exporter in the master reads them all.
Counters and histograms of a worker that has exited stay in their files, so a recycled worker's counts are
kept; gauges are `livesum`/`liveall`, dropped with the process.

Cost: nothing on the request path when off (no observer is installed, no module imported). When on, each
finished request is one counter increment (its labelled child looked up in a dict) and one histogram
observation; the gauges are set from the heartbeat.
"""

from __future__ import annotations

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
            "Requests finished (WebSocket sessions counted at their handshake), by protocol and status class.",
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
        self._observe_duration = self.duration.observe

    def observe(self, record: AccessRecord) -> None:
        websocket = record.scheme in _WEBSOCKET_SCHEMES
        key = (websocket, record.status // 100)
        child = self._children.get(key)
        if child is None:
            status_class = _STATUS_CLASSES.get(key[1], "other")
            child = self.requests.labels("websocket" if websocket else "http", status_class)
            self._children[key] = child
        child.inc()
        if not websocket:
            self._observe_duration(record.duration)

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
        """At the worker's exit: its live gauges leave the sums at once (the exporter also prunes dead pids)."""
        import_prometheus("multiprocess").mark_process_dead(os.getpid())
