"""Signals and worker lifecycle against a real Gunicorn master: graceful drain, quick exit, log reopening,
reload, max_requests recycling, a blocked worker replaced, and lifespan shutdown on every way out."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.worker_fixture import Server, ServerFactory, serve_fixture, until  # noqa: F401


def events(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def worker_pid(server: Server) -> int:
    return int(server.get("/pid")[1])


class Background:
    """One request in a thread: `result` is (status, connection header, body) or the exception."""

    def __init__(self, server: Server, path: str, timeout: float = 15.0) -> None:
        self.result: tuple[int, str | None, str] | BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(server.port, path, timeout), daemon=True)
        self._thread.start()

    def _run(self, port: int, path: str, timeout: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            self.result = (response.status, response.getheader("connection"), response.read().decode())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.result = exc
        finally:
            conn.close()

    def join(self, timeout: float = 15.0) -> tuple[int, str | None, str] | BaseException | None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "request thread still running"
        return self.result


def idle_keep_alive_connection(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    return sock


def test_sigterm_lets_in_flight_requests_finish_and_closes_idle_connections(
    serve: ServerFactory, tmp_path: Path
) -> None:
    log = tmp_path / "events"
    server = serve("--graceful-timeout", "5", "--drain-idle-grace", "0.5", env={"WORKER_TEST_EVENTS": str(log)})
    pid = worker_pid(server)
    idle = idle_keep_alive_connection(server)
    slow = Background(server, "/slow?t=1.5")
    time.sleep(0.4)  # the slow request is in the app now
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)

    # The idle keep-alive connection is closed once the drain's idle grace passes with no request on it.
    assert idle.recv(1) == b""
    assert 0.4 < time.monotonic() - started < 1.5
    idle.close()
    assert slow.join() == (200, "close", "slow done")  # finished, and told the client not to reuse it
    assert server.wait_exit() == 0
    assert f"shutdown {pid}" in events(log)
    assert "draining" in server.output()


def test_graceful_timeout_bounds_the_drain(serve: ServerFactory, tmp_path: Path) -> None:
    log = tmp_path / "events"
    server = serve("--graceful-timeout", "1", env={"WORKER_TEST_EVENTS": str(log)})
    pid = worker_pid(server)
    stuck = Background(server, "/slow?t=30")
    time.sleep(0.3)
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert time.monotonic() - started < 4.0
    assert isinstance(stuck.join(), (OSError, http.client.HTTPException))
    # Before the timeout, what is still open is ended by the server itself (the app sees http.disconnect).
    assert "ending 1 connections still open" in server.output()
    assert f"shutdown {pid}" in events(log)  # lifespan shutdown still ran


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGQUIT])
def test_sigint_and_sigquit_exit_quickly(serve: ServerFactory, tmp_path: Path, signum: int) -> None:
    log = tmp_path / "events"
    server = serve("--graceful-timeout", "20", env={"WORKER_TEST_EVENTS": str(log)})
    pid = worker_pid(server)
    stuck = Background(server, "/slow?t=30")
    time.sleep(0.3)
    started = time.monotonic()
    server.send_signal(signum)
    assert server.wait_exit() == 0
    assert time.monotonic() - started < 3.0  # not the 20 s graceful timeout
    assert isinstance(stuck.join(), (OSError, http.client.HTTPException))
    assert f"shutdown {pid}" in events(log)


def test_lifespan_shutdown_timeout_bounds_a_hanging_shutdown(serve: ServerFactory) -> None:
    server = serve(
        "--lifespan-shutdown-timeout",
        "0.5",
        "--graceful-timeout",
        "10",
        env={"WORKER_TEST_LIFESPAN": "hang-shutdown"},
    )
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert time.monotonic() - started < 3.0  # not the 10 s the arbiter would wait
    assert "did not complete within 0.5 s (setting lifespan_shutdown_timeout)" in server.output()


def test_sigusr1_reopens_the_access_log(serve: ServerFactory, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve("--access-logfile", str(access), "--access-logformat", "%(r)s %(s)s")
    server.get("/before")
    until(lambda: "GET /before HTTP/1.1 200" in access.read_text(), 5, "first line not written")
    access.rename(tmp_path / "access.log.1")  # what logrotate does
    server.send_signal(signal.SIGUSR1)
    until(access.exists, 5, "access log not reopened")
    server.get("/after")
    until(lambda: "GET /after HTTP/1.1 200" in access.read_text(), 5, "no line in the reopened log")
    assert "/after" not in (tmp_path / "access.log.1").read_text()


def _stream(server: Server, stop: threading.Event, failures: list[str], pids: set[int], keep_alive: bool) -> int:
    """Requests back to back until `stop`; returns how many were made. With keep_alive, one client reuses its
    connection (reconnecting only when told `Connection: close`), else each request has its own connection."""
    done = 0
    client = httpx.Client(timeout=10) if keep_alive else None
    try:
        while not stop.is_set():
            try:
                if client is not None:
                    response = client.get(server.url("/pid"))
                else:
                    response = httpx.get(server.url("/pid"), timeout=10)
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            if response.status_code != 200:
                failures.append(f"status {response.status_code}")
            else:
                pids.add(int(response.text))
            done += 1
    finally:
        if client is not None:
            client.close()
    return done


def test_sighup_reload_keeps_serving(serve: ServerFactory) -> None:
    server = serve()
    first = worker_pid(server)
    stop, failures, pids = threading.Event(), list[str](), set[int]()
    thread = threading.Thread(target=_stream, args=(server, stop, failures, pids, False), daemon=True)
    thread.start()
    until(lambda: first in pids, 10, "the request stream did not start")
    server.send_signal(signal.SIGHUP)
    until(lambda: any(pid != first for pid in pids), 10, "no request reached a new worker")
    time.sleep(0.3)
    stop.set()
    thread.join(15)
    assert failures == []
    assert first in pids
    assert server.proc.poll() is None
    assert "Hang up: Master" in server.output()


def test_max_requests_recycles_workers_without_failing_a_request(serve: ServerFactory) -> None:
    server = serve("--max-requests", "10", "--max-requests-jitter", "2")
    # One keep-alive client: the response that ends a worker's life must say Connection: close.
    closes = []
    previous = None
    failures: list[str] = []
    with httpx.Client(timeout=10) as client:
        for _ in range(40):
            try:
                response = client.get(server.url("/pid"))
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            pid = int(response.text)
            if previous is not None and pid != previous[0]:
                closes.append(previous[1])
            previous = (pid, response.headers.get("connection"))
    assert failures == []
    assert len(closes) >= 3
    assert set(closes) == {"close"}
    # Then a steady stream on new connections from two clients at once.
    stop, pids = threading.Event(), set[int]()
    threads = [
        threading.Thread(target=_stream, args=(server, stop, failures, pids, False), daemon=True) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    until(lambda: len(pids) >= 4, 20, f"workers were not recycled: {pids}")
    stop.set()
    for thread in threads:
        thread.join(15)
    assert failures == []
    assert "Autorestarting worker after current request." in server.output()


def test_blocked_worker_is_killed_with_its_stack_logged_and_replaced(serve: ServerFactory) -> None:
    server = serve("--timeout", "2")
    first = worker_pid(server)
    blocked = Background(server, "/block?t=60")
    output = server.wait_for_output("WORKER TIMEOUT", timeout=15)
    assert isinstance(blocked.join(), (OSError, http.client.HTTPException))
    output = server.wait_for_output("time.sleep(float(query.get", timeout=5)
    assert "its event loop was blocked at:" in output
    assert "worker_apps.py" in output
    until(lambda: _answers_from_new_worker(server, first), 15, "no new worker answered")


def _answers_from_new_worker(server: Server, old: int) -> bool:
    try:
        return worker_pid(server) != old
    except (OSError, http.client.HTTPException, ValueError):
        return False


def test_worker_exits_when_its_master_dies(serve: ServerFactory, tmp_path: Path) -> None:
    log = tmp_path / "events"
    server = serve(env={"WORKER_TEST_EVENTS": str(log)})
    pid = worker_pid(server)
    os.kill(server.pid, signal.SIGKILL)  # the master only; the worker must notice by itself
    server.proc.wait(5)
    until(lambda: f"shutdown {pid}" in events(log), 10, "worker did not shut down after its master died")
    until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, "worker process still running")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True
