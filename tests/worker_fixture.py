"""A real Gunicorn master with the gunicorn-asgi worker, on a free loopback port, stopped by its PID.

    from tests.worker_fixture import ServerFactory, serve_fixture  # noqa: F401  (the `serve` fixture)

    def test_something(serve: ServerFactory) -> None:
        server = serve("--workers", "1")              # gunicorn-asgi ... worker_apps:app
        assert httpx.get(server.url("/")).text == "ok"

Each server writes its combined output to a file (`server.output()`), is started in its own session so that
a master that will not stop can be killed with its workers, and is stopped when the test ends. This module
holds no tests of its own.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
#: Settings that keep every test server small and quick to stop.
BASE_ARGS = ("--no-control-socket", "--workers", "1", "--graceful-timeout", "2", "--log-level", "info")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    scheme: str = "http"
    ssl_context: ssl.SSLContext | None = None
    stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str = "/", timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """One request on its own connection: (status, body)."""
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before answering:\n{self.output()}")
            try:
                self.get("/", timeout=1.0)
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
            else:
                return
        pytest.fail(f"server did not answer within {timeout} s:\n{self.output()}")

    def wait_for_output(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output()
            if text in output:
                return output
            time.sleep(0.05)
        pytest.fail(f"{text!r} did not appear in the server output within {timeout} s:\n{self.output()}")

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"server did not exit within {timeout} s:\n{self.output()}")

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the master's own process group: it and its workers
        self.proc.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            # The master is gone; make sure no worker outlived it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


class ServerFactory:
    """`serve(*args, command=..., app=..., chdir=..., env=..., wait=True)` -> a started `Server`."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self.started: list[Server] = []

    def __call__(
        self,
        *args: str,
        command: str = "gunicorn-asgi",
        app: str = "worker_apps:app",
        chdir: Path = TESTS,
        env: dict[str, str] | None = None,
        wait: bool = True,
        base_args: tuple[str, ...] = BASE_ARGS,
        tls: ssl.SSLContext | None = None,
    ) -> Server:
        port = free_port()
        log_path = self._tmp_path / f"server-{len(self.started)}.log"
        program = (
            [str(BIN / "gunicorn-asgi")] if command == "gunicorn-asgi" else [sys.executable, "-m", "gunicorn"]
        )
        argv = [*program, *base_args, "--bind", f"127.0.0.1:{port}", "--chdir", str(chdir), *args, app]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
            )
        server = Server(proc, port, log_path, scheme="https" if tls else "http", ssl_context=tls)
        self.started.append(server)
        if wait:
            server.wait_ready()
        return server

    def stop_all(self) -> None:
        running = [server for server in self.started if not server.stopped and server.proc.poll() is None]
        for server in running:  # signal every master first, so that they stop side by side
            server.proc.send_signal(signal.SIGTERM)
        for server in self.started:
            server.stop()


@pytest.fixture(name="serve")
def serve_fixture(tmp_path: Path) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0, read_until_close: bool = True) -> bytes:
    """Send raw bytes on a new connection and return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                break  # the server closed with our bytes unread: as good as a close
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close and b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def until(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(message)
