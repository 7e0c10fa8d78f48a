"""Draining without losing a request: worker recycling (max_requests), reloads (SIGHUP) and stops (SIGTERM)
under steady keep-alive load from a client that never retries, through a real Gunicorn master.

The load client (bench/clients/recycle_load.py) counts every request that ends without its whole response as
failed; the server's part is to answer each request it took, and to say `Connection: close` (or GOAWAY) before
closing a connection a client may be sending on.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .worker_fixture import ROOT, ServerFactory, serve_fixture  # noqa: F401 - the `serve` fixture

LOAD = ROOT / "bench" / "clients" / "recycle_load.py"
RECYCLING = ("--workers", "2", "--max-requests", "500", "--max-requests-jitter", "50", "--graceful-timeout", "5")


def load(port: int, seconds: float, *extra: str, connections: int = 16) -> dict[str, Any]:
    """Run the load client to the end and return its summary."""
    command = [sys.executable, str(LOAD), "--port", str(port), "--seconds", str(seconds)]
    command += ["--connections", str(connections), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_max_requests_recycling_under_keep_alive_load_fails_no_request(serve: ServerFactory) -> None:
    server = serve(*RECYCLING)
    summary = load(server.port, 15)
    recycles = server.output().count("Autorestarting worker")
    assert summary["failed"] == 0, summary
    assert recycles >= 5, f"only {recycles} recycles: the load was too light to test anything ({summary})"
    assert summary["requests"] > 500 * recycles * 0.9


def test_sighup_reloads_under_load_fail_no_request(serve: ServerFactory) -> None:
    server = serve("--workers", "2", "--graceful-timeout", "5")
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(load(server.port, 8)), daemon=True)
    thread.start()
    for _ in range(2):
        time.sleep(2.5)
        server.send_signal(signal.SIGHUP)
    thread.join(70)
    assert result["failed"] == 0, result
    assert server.output().count("Hang up: Master") == 2


def test_http2_recycling_under_load_fails_no_stream(serve: ServerFactory) -> None:
    server = serve(*RECYCLING, "--http-protocols", "h1,h2", "--http2-cleartext", "prior-knowledge", wait=False)
    server.wait_for_output("(h2c: ")
    time.sleep(0.5)
    summary = load(server.port, 10, "--http2")
    recycles = server.output().count("Autorestarting worker")
    assert summary["failed"] == 0, summary
    assert recycles >= 3, f"only {recycles} recycles ({summary})"


def test_server_sent_events_see_a_disconnect_before_the_graceful_timeout(
    serve: ServerFactory, tmp_path: Path
) -> None:
    log = tmp_path / "events"
    server = serve("--graceful-timeout", "4", env={"WORKER_TEST_EVENTS": str(log)})
    stream = subprocess.Popen(  # curl keeps the stream open and prints what arrives
        ["curl", "-sN", server.url("/events")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert stream.stdout is not None
        assert stream.stdout.readline().startswith(b"data: 0")
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        took = time.monotonic() - started
    finally:
        stream.kill()
        stream.wait()
    assert "events-http.disconnect" in log.read_text()
    assert took < 4.0, f"the worker took {took:.1f} s, past the graceful timeout"
    assert "ending 1 connections still open" in server.output()


@pytest.mark.parametrize("idle_for", [0.3, 1.0])
def test_an_idle_keep_alive_connection_is_served_once_more_when_a_drain_starts(
    serve: ServerFactory, idle_for: float
) -> None:
    """SIGTERM while a client sits on an idle kept-alive connection: its next request, sent within the drain's
    idle grace, is answered (with Connection: close) instead of meeting a closed connection."""
    import http.client

    server = serve("--graceful-timeout", "10", "--drain-idle-grace", "3")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/")
    first = connection.getresponse()
    assert first.read() == b"ok"
    server.send_signal(signal.SIGTERM)
    time.sleep(idle_for)
    connection.request("GET", "/")
    second = connection.getresponse()
    assert (second.status, second.read(), second.getheader("connection")) == (200, b"ok", "close")
    connection.close()
    assert server.wait_exit() == 0
