"""The code the documentation shows is run here, so the docs cannot drift from what works.

- examples/standalone.py (docs/how-to/standalone.md) as a real process on a free port, stopped by SIGTERM.
- examples/line_protocol.py (docs/how-to/protocol-plugin.md) on its own, and reached from HTTP/1.1 through
  asgi-http1's upgrade hand-off.
- examples/nginx/proxy.conf (docs/how-to/behind-nginx.md) in a real nginx in front of a real server.
- docs/gen_settings.py renders every asgi-core setting (the reference page is generated at build time).
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import asgi_core
import pytest
from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext, describe_settings, serve
from asgi_http1 import HTTP1Protocol
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DEADLINE = 15.0


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next stdout line of a child, or fail after `timeout` seconds (never block the suite)."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"no output from the example within {timeout} s")
    return proc.stdout.readline()


@pytest.fixture
def standalone() -> Any:
    """examples/standalone.py in its own process on a free port; yields (process, port), then stops it."""
    env = {**os.environ, "PORT": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "standalone.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        line = read_line(proc, DEADLINE)
        assert line.startswith("Serving on http://127.0.0.1:"), line
        yield proc, int(line.rsplit(":", 1)[1])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=DEADLINE)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_standalone_example_serves_requests_and_stops_on_sigterm(standalone: Any) -> None:
    proc, port = standalone
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    conn.request("GET", "/docs")
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == b"Hello from asyncio + asgi-http1, path /docs\n"  # lifespan state reached it
    # Same connection (keep-alive): a POST body is echoed back.
    conn.request("POST", "/echo", body=b"x" * 100_000)
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == b"x" * 100_000
    # The example's Config caps bodies at 1 MiB: a larger declared body is refused before the app runs.
    # Only the head is sent: the server answers without waiting for (or reading) the body.
    conn.putrequest("POST", "/echo")
    conn.putheader("Content-Length", str(1024 * 1024 + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    response.read()
    conn.close()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=DEADLINE) == 0  # graceful stop, lifespan shutdown included, clean exit


# ---- the protocol plugin example ------------------------------------------------------------------------


async def read_line_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes, bool]:
    """Parse the line protocol's reply: (status, headers, body, whether it ended with the final chunk)."""
    status = int(await reader.readline())
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\n", b""):
        name, _, value = line.rstrip(b"\n").partition(b": ")
        headers[name] = value
    body = b""
    while size_line := await reader.readline():
        size = int(size_line, 16)
        if size == 0:
            return status, headers, body, True
        body += await reader.readexactly(size)
    return status, headers, body, False


async def with_server(
    app: Any, factory: Callable[[ServerContext], asyncio.Protocol], check: Callable[[int], Awaitable[None]]
) -> None:
    """Run asgi_core.serve on a free port around `check(port)`, then stop it and wait for it to finish."""
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(app, factory, port=0, stop=stop, ready=lambda s: bound.set_result(s.sockets[0].getsockname()[1]))
    )
    try:
        port = await asyncio.wait_for(asyncio.shield(bound), DEADLINE)
        await asyncio.wait_for(check(port), DEADLINE)
    finally:
        stop.set()
        await asyncio.wait_for(server, DEADLINE)


def test_line_protocol_example_serves_a_request_with_a_body() -> None:
    example = load(EXAMPLES / "line_protocol.py")

    async def check(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"post /submit 11\nhello")
        await writer.drain()
        writer.write(b" world")  # the body may arrive in pieces
        status, headers, body, complete = await read_line_response(reader)
        writer.close()
        assert (status, body, complete) == (200, b"POST /submit hello world", True)
        assert headers[b"content-type"] == b"text/plain"
        assert headers[b"server"] == b"gunicorn-asgi"  # added by the shared request cycle, not the plugin

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"this is not a request line\n")
        assert await reader.read() == b"400\n\n0\n"
        writer.close()

    asyncio.run(with_server(example.echo_app, example.PLUGIN.create_protocol, check))


def test_line_protocol_example_gets_a_500_from_the_shared_cycle_when_the_app_fails() -> None:
    example = load(EXAMPLES / "line_protocol.py")

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise RuntimeError("boom")

    async def check(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / 0\n")
        status, _, body, complete = await read_line_response(reader)
        writer.close()
        assert (status, body, complete) == (500, b"Internal Server Error", True)

    asyncio.run(with_server(broken, example.LineProtocol, check))


def test_line_protocol_example_takes_over_an_http1_connection_by_upgrade() -> None:
    example = load(EXAMPLES / "line_protocol.py")

    async def main() -> None:
        registry = Registry(discover=False)
        registry.add_upgrade(example.UPGRADE)
        context = ServerContext(app=example.echo_app, config=Config(), registry=registry)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: HTTP1Protocol(context), "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # The line request travels in the same packet as the HTTP/1.1 head: the hand-off must pass it on.
            writer.write(
                b"GET /ignored HTTP/1.1\r\nHost: example\r\nUpgrade: x-lines\r\nConnection: Upgrade\r\n\r\n"
                b"PUT /after-upgrade 3\nabc"
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
            assert head.startswith(b"HTTP/1.1 101 ")
            status, _, body, complete = await asyncio.wait_for(read_line_response(reader), DEADLINE)
            assert (status, body, complete) == (200, b"PUT /after-upgrade abc", True)
            writer.close()

            # A request the handler does not accept (not GET) is answered as plain HTTP/1.1.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /plain HTTP/1.1\r\nHost: x\r\nUpgrade: x-lines\r\nContent-Length: 2\r\n\r\nok")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
            assert head.startswith(b"HTTP/1.1 200 ")
            writer.close()
        finally:
            server.close()
            for connection in list(context.connections):
                connection.shutdown()
            await asyncio.wait_for(server.wait_closed(), DEADLINE)

    asyncio.run(main())


# ---- the generated settings reference -------------------------------------------------------------------


def test_settings_reference_documents_every_setting_with_its_default() -> None:
    generator = load(ROOT / "docs" / "gen_settings.py")
    page: str = generator.render()
    for setting in describe_settings():
        section_start = page.index(f"### `{setting['name']}`")
        section = page[section_start : page.find("\n### ", section_start + 1)]
        assert setting["help"].split("`")[0].strip()[:40] in section, setting["name"]
        assert generator.format_default(setting["default"]) in section, setting["name"]
    # With the worker installed (it is, in the test environment), each field names the Gunicorn flag filling it.
    sources = generator.gunicorn_sources()
    assert sources is not None
    assert set(sources) <= {setting["name"] for setting in describe_settings()}
    for name, source in sources.items():
        section_start = page.index(f"### `{name}`")
        assert f"`{source.flag}`" in page[section_start : page.find("\n### ", section_start + 1)], name


def test_settings_reference_is_written_only_when_it_changes(tmp_path: Path) -> None:
    generator = load(ROOT / "docs" / "gen_settings.py")
    target = tmp_path / "reference" / "settings.md"
    assert generator.write(target) is True
    first = target.stat().st_mtime_ns
    time.sleep(0.01)
    assert generator.write(target) is False  # unchanged: `mkdocs serve` must not see a change and loop
    assert target.stat().st_mtime_ns == first


# ---- the nginx configuration of "Deploy behind nginx" ---------------------------------------------------

NGINX_MAIN = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"examples/nginx/proxy.conf no longer has exactly one {old!r}"
    return text.replace(old, new)


async def report_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what the app was told about the client; echoes WebSocket messages."""
    if scope["type"] == "http":
        headers = dict(scope["headers"])
        body = json.dumps(
            {
                "client": scope["client"][0],
                "scheme": scope["scheme"],
                "host": headers.get(b"host", b"").decode(),
                "path": scope["path"],
            }
        ).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": "echo: " + message["text"]})


class BackendThread:
    """asgi_core.serve with asgi-http1 on a free port, in a thread with its own event loop."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    def count(self, context: ServerContext) -> asyncio.Protocol:
        self.connections += 1
        return HTTP1Protocol(context)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def ready(server: asgi_core.Server) -> None:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()

        await serve(report_app, self.count, port=0, stop=self._stop, ready=ready, graceful_timeout=5)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(DEADLINE), "the backend did not start"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "the backend did not stop"


@pytest.fixture
def backend() -> Iterator[BackendThread]:
    server = BackendThread()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_nginx_example_proxies_with_keep_alive_forwarded_headers_and_websocket(
    tmp_path: Path, backend: BackendThread
) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: `apt-get install -y nginx` (.ci/run installs it)")
    front_port = free_port()
    site = (EXAMPLES / "nginx" / "proxy.conf").read_text()
    site = replace_once(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{backend.port};")
    site = replace_once(site, "listen 80;", f"listen 127.0.0.1:{front_port};")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(NGINX_MAIN.format(dir=tmp_path))
    proc = subprocess.Popen(
        [nginx, "-p", f"{tmp_path}/", "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                socket.create_connection(("127.0.0.1", front_port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"nginx did not start: {(tmp_path / 'error.log').read_text()}")
                time.sleep(0.05)

        for attempt in range(5):  # a new client connection each time, as browsers make them
            conn = http.client.HTTPConnection("127.0.0.1", front_port, timeout=DEADLINE)
            # A client claiming HTTPS: nginx overwrites X-Forwarded-Proto with the real scheme.
            conn.request("GET", f"/who/{attempt}", headers={"Host": "example.com", "X-Forwarded-Proto": "https"})
            response = conn.getresponse()
            assert response.status == 200
            seen = json.loads(response.read())
            conn.close()
            assert seen == {
                "client": "127.0.0.1",
                "scheme": "http",
                "host": "example.com",
                "path": f"/who/{attempt}",
            }
        # nginx reused one upstream connection for all five requests (keepalive + empty Connection header).
        assert backend.connections == 1

        with connect(f"ws://127.0.0.1:{front_port}/chat", open_timeout=DEADLINE, close_timeout=DEADLINE) as ws:
            ws.send("hello")
            assert ws.recv(timeout=DEADLINE) == "echo: hello"
    finally:
        proc.terminate()
        proc.wait(timeout=DEADLINE)
        if proc.stderr is not None:
            proc.stderr.close()
