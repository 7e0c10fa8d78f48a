"""--metrics-bind through a real Gunicorn master: Prometheus text scraped with httpx while load runs, the
counts checked against the requests sent, kept across worker recycling; the gauges; the directory cleaned up;
a clear error without prometheus_client or with a port already taken; a USR2 binary upgrade keeps port and counts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.worker_fixture import ROOT, ServerFactory, free_port, serve_fixture, until  # noqa: F401

LOAD = ROOT / "bench" / "clients" / "recycle_load.py"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `GET /metrics`, parsed by prometheus_client's own parser: (name, labels) -> value."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def settled(
    port: int, name: str, expected: float, **labels: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples once `name` says `expected`: workers write their requests' tallies from their heartbeat,
    every second, so a scrape may see the last second's requests one beat late."""
    seen: list[float] = []

    def reached() -> bool:
        samples = scrape(port)
        seen.append(value(samples, name, **labels))
        return seen[-1] == expected

    until(reached, 10, f"{name}{labels} stayed at {seen[-1:]}, not {expected}")
    return scrape(port)


def load(port: int, seconds: float, connections: int = 8) -> dict[str, Any]:
    command = [sys.executable, str(LOAD), "--port", str(port), "--seconds", str(seconds)]
    command += ["--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_counts_match_the_requests_sent_across_worker_recycling(serve: ServerFactory, tmp_path: Path) -> None:
    metrics = free_port()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    server = serve(
        "--workers", "2", "--max-requests", "400", "--max-requests-jitter", "20", "--graceful-timeout", "5",
        "--metrics-bind", f"127.0.0.1:{metrics}",
        env={"TMPDIR": str(tmpdir)},
    )  # fmt: skip
    assert len(list(tmpdir.iterdir())) == 1  # the master's private multiprocess directory
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(load(server.port, 6)), daemon=True)
    thread.start()
    during = []
    while thread.is_alive():
        during.append(value(scrape(metrics), "gunicorn_asgi_requests_total", protocol="http", status_class="2xx"))
        time.sleep(0.5)
    thread.join()
    assert len(during) >= 5
    assert during == sorted(during), during  # counters never go back, recycles included
    assert during[-1] > 0
    for _ in range(3):
        httpx.get(server.url("/status?code=404"))
    recycles = server.output().count("Autorestarting worker")
    assert recycles >= 2, f"only {recycles} recycles: the load was too light ({result})"
    # Every response the client read was counted once, and recycling loses none (tests/test_worker_drain.py).
    assert result["failed"] == 0, result
    sent_ok = result["requests"] + 1  # and the fixture's readiness probe
    samples = settled(metrics, "gunicorn_asgi_requests_total", sent_ok, protocol="http", status_class="2xx")
    samples = settled(metrics, "gunicorn_asgi_requests_total", 3, protocol="http", status_class="4xx")
    served = value(samples, "gunicorn_asgi_requests_total", protocol="http", status_class="2xx")
    assert served == sent_ok, (served, result)
    assert value(samples, "gunicorn_asgi_requests_total", protocol="http", status_class="4xx") == 3
    assert value(samples, "gunicorn_asgi_request_duration_seconds_count") == served + 3
    assert value(samples, "gunicorn_asgi_request_duration_seconds_bucket", le="+Inf") == served + 3
    assert value(samples, "gunicorn_asgi_worker_recycles_total", reason="max_requests") == recycles
    assert ("gunicorn_asgi_worker_recycles_total", (("reason", "max_worker_memory"),)) in samples
    server.stop()
    assert list(tmpdir.iterdir()) == []  # removed with the master


def test_gauges_open_connections_websocket_sessions_and_rss(serve: ServerFactory, tmp_path: Path) -> None:
    metrics = free_port()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(f"metrics_bind = '127.0.0.1:{metrics}'\nmax_worker_memory = 4096\n")
    server = serve("--workers", "2", "--config", str(config))
    with httpx.Client() as client:
        for n in range(30):
            client.get(server.url(f"/status?code={200 + n % 3}"))
    samples = settled(metrics, "gunicorn_asgi_requests_total", 31, protocol="http", status_class="2xx")  # + probe
    assert value(samples, "gunicorn_asgi_request_duration_seconds_count") == 31
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"

        def session_seen() -> bool:
            samples = scrape(metrics)
            return value(samples, "gunicorn_asgi_websocket_sessions") == 1

        until(session_seen, 10, "the open WebSocket session never showed")
        samples = scrape(metrics)
        assert value(samples, "gunicorn_asgi_open_connections") >= 1
        rss = {labels: v for (name, labels), v in samples.items() if name == "gunicorn_asgi_worker_rss_bytes"}
        assert len(rss) == 2  # one per live worker, labelled by pid
        assert all(v > 1024 * 1024 for v in rss.values())
    until(lambda: value(scrape(metrics), "gunicorn_asgi_websocket_sessions") == 0, 10, "session never left")
    # A session is counted (and logged) when it ends, with its whole duration.
    settled(metrics, "gunicorn_asgi_requests_total", 1, protocol="websocket", status_class="1xx")


def test_without_prometheus_client_startup_fails_clearly(serve: ServerFactory, tmp_path: Path) -> None:
    hidden = tmp_path / "hide" / "prometheus_client"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named prometheus_client')\n")
    server = serve(
        "--metrics-bind", f"127.0.0.1:{free_port()}", env={"PYTHONPATH": str(hidden.parent)}, wait=False
    )
    assert server.wait_exit() == 1
    output = server.output()
    assert "--metrics-bind needs the prometheus_client package, which is not installed" in output, output
    assert "pip install 'gunicorn-asgi[metrics]'" in output


def test_a_taken_port_fails_clearly(serve: ServerFactory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = serve("--metrics-bind", f"127.0.0.1:{port}", wait=False)
        assert server.wait_exit() == 1
    assert f"--metrics-bind 127.0.0.1:{port}: cannot listen there" in server.output()


def test_a_usr2_upgrade_keeps_the_metrics_port_and_the_counts(serve: ServerFactory, tmp_path: Path) -> None:
    # Gunicorn's binary upgrade: USR2 starts a new master beside the old one, then the old one is stopped. The
    # new master must start although the old one holds the metrics port, and the counts go on.
    metrics = free_port()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    server = serve(
        "--workers", "1", "--metrics-bind", f"127.0.0.1:{metrics}",
        env={"TMPDIR": str(tmpdir)},
    )  # fmt: skip
    with httpx.Client() as client:
        for _ in range(20):
            assert client.get(server.url("/")).status_code == 200
    settled(metrics, "gunicorn_asgi_requests_total", 21, protocol="http", status_class="2xx")

    server.send_signal(signal.SIGUSR2)
    until(lambda: len(_masters(server.output())) == 2, 30, "no new master started")
    old_master, new_master = _masters(server.output())
    try:  # the new master is not the fixture's process: it is stopped here, whatever happens
        assert old_master == server.pid
        until(lambda: server.output().count("Booting worker") >= 2, 30, "the new master's worker never booted")
        assert "cannot listen there" not in server.output()
        server.send_signal(signal.SIGTERM)  # the old master leaves; the new one serves on, requests and metrics
        assert server.wait_exit() == 0
        with httpx.Client() as client:
            for _ in range(10):
                assert client.get(server.url("/")).status_code == 200
        settled(metrics, "gunicorn_asgi_requests_total", 31, protocol="http", status_class="2xx")
        assert [path.name for path in tmpdir.iterdir()] != []  # the new master still uses the directory
    finally:
        if _alive(new_master):
            os.kill(new_master, signal.SIGTERM)
        until(lambda: not _alive(new_master), 30, "the new master did not stop")
    assert list(tmpdir.iterdir()) == []  # removed by the last master to leave


def _masters(output: str) -> list[int]:
    """The pids of the masters that logged their start, in order (a line `[time] [pid] [INFO] Starting gunicorn`)."""
    return [int(line.split("] [")[1]) for line in output.splitlines() if "[INFO] Starting gunicorn" in line]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


_TALLY_SCRIPT = """
import json, sys
from asgi_core import AccessRecord
from gunicorn_asgi._metrics import WorkerMetrics
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

metrics = WorkerMetrics()
for scheme, status, duration in json.loads(sys.argv[1]):
    metrics.observe(AccessRecord("GET", "/", b"", "1.1", status, 0, duration, None, [], [], scheme))
metrics.flush()
registry = CollectorRegistry()
MultiProcessCollector(registry, path=sys.argv[2])
samples = {}
for family in registry.collect():
    for sample in family.samples:
        samples[sample.name + json.dumps(sample.labels, sort_keys=True)] = sample.value
print(json.dumps(samples))
"""


def test_tallies_written_from_the_heartbeat_equal_observing_each_request(tmp_path: Path) -> None:
    # The worker tallies requests in plain integers and writes them from its heartbeat; what the exporter then
    # reads must be exactly what observing each request in prometheus_client would have given: counts by
    # protocol and status class, every histogram bucket (durations on a bound count in that bound's bucket),
    # the sum.
    records = [("http", 200, d) for d in (0.0001, 0.005, 0.0051, 0.1, 0.25, 1.0, 3.0, 12.0)]
    records += [("http", 404, 0.01), ("http", 503, 0.5), ("ws", 101, 30.0)]
    done = subprocess.run(
        [sys.executable, "-c", _TALLY_SCRIPT, json.dumps(records), str(tmp_path)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    samples: dict[str, float] = json.loads(done.stdout)

    def sample(name: str, **labels: str) -> float:
        return samples.get(f"gunicorn_asgi_{name}" + json.dumps(labels, sort_keys=True), -1.0)

    assert sample("requests_total", protocol="http", status_class="2xx") == 8
    assert sample("requests_total", protocol="http", status_class="4xx") == 1
    assert sample("requests_total", protocol="http", status_class="5xx") == 1
    assert sample("requests_total", protocol="websocket", status_class="1xx") == 1
    durations = [duration for scheme, _, duration in records if scheme == "http"]  # sessions have no duration
    bounds = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    for bound in bounds:
        below = sum(1 for duration in durations if duration <= bound)
        assert sample("request_duration_seconds_bucket", le=str(bound)) == below, bound
    assert sample("request_duration_seconds_bucket", le="+Inf") == len(durations)
    assert sample("request_duration_seconds_sum") == pytest.approx(sum(durations))
