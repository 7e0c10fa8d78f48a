"""The master's side of `--metrics-bind`: one Prometheus endpoint for the whole server.

Started from the worker class's `check_config`, which Gunicorn's arbiter calls in the master before it forks
any worker: the master makes a private directory for prometheus_client's multiprocess files, puts it in
`PROMETHEUS_MULTIPROC_DIR` (so every worker forked from then on writes there), and serves `GET /metrics` from
a daemon thread with a collector that sums every file. The directory is removed when the master exits.

An operator who sets `PROMETHEUS_MULTIPROC_DIR` keeps that directory (and its cleaning); the app's own
prometheus_client metrics, made in the workers, are exported beside ours either way.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

from ._metrics import import_prometheus
from ._metrics_listener import listen, serve

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Marks the directory as made by a gunicorn-asgi master (not the operator's): a master started by a USR2
#: upgrade shares it, and the last master to exit removes it.
_OWNED_ENV = "GUNICORN_ASGI_METRICS_DIR"
#: Each master using an owned directory keeps an empty file named after its pid there.
_MASTER_PREFIX = "master-"
_READ_ATTEMPTS = 5
#: Seconds between two reads of the directory when one found a file mid-change.
_RETRY_PAUSE = 0.01
_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")


class _LiveCollector:
    """prometheus_client's MultiProcessCollector, after dropping live gauges of processes that are gone (a
    worker killed by the arbiter never gets to remove its own)."""

    def __init__(self, directory: str) -> None:
        multiprocess = import_prometheus("multiprocess")
        self._directory = directory
        self._multiprocess = multiprocess
        self._inner = multiprocess.MultiProcessCollector(None, path=directory)

    def collect(self) -> Iterable[Any]:
        for name in os.listdir(self._directory):
            match = _LIVE_FILE.match(name)
            if match and not _alive(int(match.group(1))):
                self._multiprocess.mark_process_dead(int(match.group(1)), self._directory)
        for attempt in range(_READ_ATTEMPTS):
            try:
                return list(self._inner.collect())
            except (FileNotFoundError, struct.error):
                # A retiring worker removed its files between the listing and the reading, or a new one has just
                # made its file and not yet sized it (prometheus_client creates it empty, then truncates it to
                # its initial size): read them again, a moment later.
                if attempt == _READ_ATTEMPTS - 1:
                    raise
                time.sleep(_RETRY_PAUSE)
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_exporter(bind: tuple[str, int], successor_env: MutableMapping[str, str]) -> str:
    """Serve the metrics on `bind` from this (the master) process; returns the multiprocess directory.

    `successor_env` is the environment Gunicorn gives the master a USR2 upgrade starts: the socket and the
    directory are handed over in it (`_metrics_listener.py`)."""
    prometheus = import_prometheus()
    directory = os.environ.get(DIR_ENV)
    owned = not directory or directory == os.environ.get(_OWNED_ENV)
    if owned:
        if not directory or not os.path.isdir(directory):
            directory = tempfile.mkdtemp(prefix="gunicorn-asgi-metrics-")
        # One directory for every generation of masters: the counts go on across an upgrade, and either
        # master's answer during the overlap is the whole server's. The last master to leave removes it.
        marker = _master_marker(directory, os.getpid())
        open(marker, "w").close()
        atexit.register(_leave, directory, os.getpid())
        successor_env[_OWNED_ENV] = directory
    assert directory is not None  # noqa: S101 - set above
    os.environ[DIR_ENV] = successor_env[DIR_ENV] = directory
    if owned:
        os.environ[_OWNED_ENV] = directory
    values = import_prometheus("values")
    values.ValueClass = values.get_value_class()  # multiprocess from now on, even if imported earlier
    registry = prometheus.CollectorRegistry(auto_describe=False)
    registry.register(_LiveCollector(directory))
    host, port = bind
    serve(listen(host, port, successor_env), prometheus.make_wsgi_app(registry))
    return directory


def _master_marker(directory: str, pid: int) -> str:
    return os.path.join(directory, f"{_MASTER_PREFIX}{pid}")


def _leave(directory: str, master_pid: int) -> None:
    # Workers are forked from the master and run its atexit handlers too: only the master leaves.
    if os.getpid() != master_pid:
        return
    with contextlib.suppress(OSError):
        os.remove(_master_marker(directory, master_pid))
    with contextlib.suppress(OSError):
        others = [name for name in os.listdir(directory) if name.startswith(_MASTER_PREFIX)]
        if not any(_alive(int(name[len(_MASTER_PREFIX) :])) for name in others):
            shutil.rmtree(directory)
