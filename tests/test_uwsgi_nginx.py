"""Debian's nginx in front of the uWSGI protocol, over TCP and a Unix socket: what a user of
`uwsgi_pass` + `include uwsgi_params` gets, checked from an HTTP client's side.

The server behind nginx comes from the `backend` fixture, with two parameters: `asgi_core.serve` with the
uwsgi plugin in a thread (plus a Unix-socket server with the same protocol factory), and a real
`gunicorn-asgi --protocol uwsgi` master bound to both a TCP port and a Unix socket. The tests talk to
`Backend.tcp`/`Backend.unix`/`Backend.logs()` and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asgi_core
import httpx
import pytest
import trustme
from asgi_core import Config, ServerContext, serve
from asgi_uwsgi import PLUGIN

from tests.nginx_fixture import (  # noqa: F401 - nginx_fixture provides the `nginx` fixture
    Nginx,
    NginxFactory,
    nginx_fixture,
    start_nginx,
    uwsgi_location,
    uwsgi_params_include,
)
from tests.test_uwsgi_apps import app, pattern
from tests.worker_fixture import BASE_ARGS, BIN, TESTS, free_port

MiB = 1024 * 1024
TIMEOUT = 15.0


# ---- servers behind nginx ----------------------------------------------------------------------------


class Backend:
    """A uWSGI server under test, listening on a loopback TCP port and a Unix socket."""

    tcp: str  # for uwsgi_pass: "127.0.0.1:PORT"
    unix: str  # for uwsgi_pass: "unix:/path"

    def logs(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class ThreadBackend(Backend):
    """`asgi_core.serve(app, PLUGIN.create_protocol)` and a Unix server, on an event loop in a thread."""

    def __init__(self, socket_path: Path, config: Config) -> None:
        self._path = socket_path
        self._config = config
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._records: list[str] = []
        self._handler = _ListHandler(self._records)
        self.unix = f"unix:{socket_path}"
        self.tcp = ""
        logging.getLogger("asgi_core.error").addHandler(self._handler)
        self._thread = threading.Thread(target=self._run, name="uwsgi-backend", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the uWSGI backend did not start: {self._error!r}")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        context = ServerContext(app=app, config=self._config)
        unix_server = await loop.create_unix_server(lambda: PLUGIN.create_protocol(context), str(self._path))

        def ready(server: asgi_core.Server) -> None:
            self.tcp = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
            self._ready.set()

        try:
            await serve(
                app,
                PLUGIN.create_protocol,
                host="127.0.0.1",
                port=0,
                config=self._config,
                stop=self._stop,
                ready=ready,
                graceful_timeout=5,
            )
        finally:
            unix_server.close()
            context.drain_connections()
            await unix_server.wait_closed()

    def logs(self) -> str:
        return "\n".join(self._records)

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(15)
        logging.getLogger("asgi_core.error").removeHandler(self._handler)
        assert not self._thread.is_alive(), "the uWSGI backend did not stop"


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.INFO)
        self._records = records

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record.getMessage())


class GunicornBackend(Backend):
    """A real `gunicorn-asgi --protocol uwsgi` master with one worker, bound to a TCP port and a Unix socket."""

    def __init__(self, socket_path: Path, config: Config) -> None:
        port = free_port()
        self.tcp = f"127.0.0.1:{port}"
        self.unix = f"unix:{socket_path}"
        self._log = socket_path.with_suffix(".log")
        argv = [
            str(BIN / "gunicorn-asgi"),
            *BASE_ARGS,
            "--protocol", "uwsgi",
            "--uwsgi-allow-from", ",".join(config.uwsgi_allow_ips),
            "--bind", self.tcp,
            "--bind", self.unix,
            "--chdir", str(TESTS),
            "test_uwsgi_apps:app",
        ]  # fmt: skip
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"gunicorn-asgi exited with {self._proc.returncode}:\n{self.logs()}")
            # Booted once the worker says so; connecting alone would only reach the master's backlog.
            if "Booting worker" in self.logs() and socket_path.exists():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn-asgi did not start:\n{self.logs()}")

    def logs(self) -> str:
        return self._log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)


BackendStarter = Callable[[Path, Config], Backend]
BACKENDS: dict[str, BackendStarter] = {"asgi_core.serve": ThreadBackend, "gunicorn-asgi": GunicornBackend}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def start_backend(request: pytest.FixtureRequest) -> BackendStarter:
    starter: BackendStarter = BACKENDS[request.param]
    return starter


@pytest.fixture(scope="module")
def backend(start_backend: BackendStarter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    server = start_backend(tmp_path_factory.mktemp("uwsgi") / "uwsgi.sock", Config())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def front(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """One nginx with a location per way of passing requests to the backend."""
    locations = "".join(
        [
            uwsgi_location(backend.tcp, path="/"),
            uwsgi_location(backend.unix, path="/unix/"),
            uwsgi_location(backend.tcp, path="/unbuffered/", extra="uwsgi_buffering off;"),
            uwsgi_location(backend.tcp, path="/direct/", extra="uwsgi_request_buffering off;"),
            uwsgi_location(backend.tcp, path="/app/", extra="uwsgi_param SCRIPT_NAME /app;"),
            uwsgi_location(backend.tcp, path="/behind-tls/", extra="uwsgi_param UWSGI_SCHEME https;"),
            uwsgi_location(backend.tcp, path="/https-on/", extra="uwsgi_param HTTPS on;"),
            uwsgi_location(backend.tcp, path="/old/", extra="rewrite ^/old/(.*)$ /new/$1 break;"),
            uwsgi_location(
                backend.tcp,
                path="/app2/old/",
                extra="uwsgi_param SCRIPT_NAME /app2; rewrite ^/app2/old/(.*)$ /app2/new/$1 break;",
            ),
            uwsgi_location(backend.tcp, path="/mod5/", extra="uwsgi_modifier1 5;"),
            # small buffers, so that a large response goes through nginx's temporary file
            uwsgi_location(
                backend.tcp,
                path="/buffered/",
                extra="uwsgi_buffering on; uwsgi_buffer_size 4k; uwsgi_buffers 4 4k;",
            ),
        ]
    )
    server = start_nginx(tmp_path_factory.mktemp("nginx"), locations)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as http:
        yield http


def echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# ---- requests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/unix"])
def test_get_over_tcp_and_unix_socket(front: Nginx, client: httpx.Client, prefix: str) -> None:
    info = echo(client.get(front.url(f"{prefix}/echo")))
    assert info["method"] == "GET"
    assert info["path"] == f"{prefix}/echo"
    assert info["http_version"] == "1.1"
    assert info["root_path"] == ""
    assert ["host", "127.0.0.1"] in info["headers"]


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query"),
    [
        ("/q/echo?a=1&b=two&a=3", "/q/echo", "/q/echo", "a=1&b=two&a=3"),
        ("/q/echo?text=caf%C3%A9+%26+more&empty=", "/q/echo", "/q/echo", "text=caf%C3%A9+%26+more&empty="),
        ("/caf%C3%A9/sp%20ace/echo?x", "/café/sp ace/echo", "/caf%C3%A9/sp%20ace/echo", "x"),
        ("/q/echo?", "/q/echo", "/q/echo", ""),
    ],
)
def test_paths_and_query_strings(front: Nginx, target: str, path: str, raw_path: str, query: str) -> None:
    # A raw request line, so that no client library normalises the target on the way.
    with socket.create_connection(("127.0.0.1", front.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        raw = _read_to_close(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    info = json.loads(body)
    assert (info["path"], info["raw_path"], info["query_string"]) == (path, raw_path, query)


def test_headers_arrive_in_order_with_duplicates(front: Nginx, client: httpx.Client) -> None:
    headers = [("X-Trace", "abc"), ("X-Dup", "one"), ("X-Dup", "two"), ("Cookie", "a=1"), ("Accept", "*/*")]
    info = echo(client.get(front.url("/echo"), headers=headers))
    got = [pair for pair in info["headers"] if pair[0] in {"x-trace", "x-dup", "cookie"}]
    assert got == [["x-trace", "abc"], ["x-dup", "one"], ["x-dup", "two"], ["cookie", "a=1"]]


@pytest.mark.parametrize("size", [0, 1, 65535, 1 * MiB + 7, 8 * MiB])
@pytest.mark.parametrize("prefix", ["", "/direct"])
def test_post_bodies(front: Nginx, client: httpx.Client, size: int, prefix: str) -> None:
    body = pattern(size)
    info = echo(client.post(front.url(f"{prefix}/echo"), content=body, headers={"Content-Type": "x/y"}))
    assert info["size"] == size
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert ["content-length", str(size)] in info["headers"]
    if size:
        assert ["content-type", "x/y"] in info["headers"]


def test_post_body_over_a_unix_socket(front: Nginx, client: httpx.Client) -> None:
    body = pattern(3 * MiB)
    info = echo(client.post(front.url("/unix/echo"), content=body))
    assert info["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("prefix", ["", "/direct"])
def test_chunked_request_body_from_the_client(front: Nginx, client: httpx.Client, prefix: str) -> None:
    pieces = [pattern(1000), b"", pattern(300_000), b"tail"]

    def generate() -> Iterator[bytes]:
        yield from pieces

    request = client.build_request("PUT", front.url(f"{prefix}/echo"), content=generate())
    assert request.headers["transfer-encoding"] == "chunked"
    info = echo(client.send(request))
    body = b"".join(pieces)
    assert info["size"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    # nginx buffers a chunked body and passes its length; the client's framing does not reach the app
    assert ["content-length", str(len(body))] in info["headers"]
    assert not [name for name, _ in info["headers"] if name == "transfer-encoding"]


# ---- responses ---------------------------------------------------------------------------------------


def test_streaming_response_reaches_the_client_before_it_ends(front: Nginx, client: httpx.Client) -> None:
    token = uuid.uuid4().hex
    with client.stream("GET", front.url(f"/unbuffered/stream?token={token}")) as response:
        lines = response.iter_lines()
        assert next(lines) == "first"  # the app is now waiting for the release below
        assert client.get(front.url(f"/release?token={token}")).text == "released"
        assert list(lines) == ["second"]
    assert "content-length" not in response.headers


@pytest.mark.parametrize("with_length", [True, False])
@pytest.mark.parametrize("prefix", ["", "/unbuffered", "/unix"])
def test_large_responses(front: Nginx, client: httpx.Client, with_length: bool, prefix: str) -> None:
    size = 8 * MiB + 3
    response = client.get(front.url(f"{prefix}/large?size={size}&length={int(with_length)}"))
    assert response.status_code == 200
    assert len(response.content) == size
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(pattern(size)).digest()
    if with_length:
        assert response.headers["content-length"] == str(size)
    else:
        assert response.headers.get("transfer-encoding") == "chunked"  # nginx frames it for its client


def test_slow_client_behind_unbuffered_nginx_holds_the_app_back(front: Nginx, client: httpx.Client) -> None:
    """nginx with uwsgi_buffering off reads from the server only as its client takes the response: a client
    that stops reading stops the app, after the socket buffers of both hops and the server's high-water
    mark, instead of the server taking the whole stream into memory."""
    token, size = uuid.uuid4().hex, 256 * MiB
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", front.port))
        sock.sendall(f"GET /unbuffered/flood?token={token}&size={size} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        _wait_for(lambda: client.get(front.url(f"/status?token={token}")).text != "unknown")
        time.sleep(1.0)  # the client reads nothing
        stalled = int(client.get(front.url(f"/status?token={token}")).text)
        time.sleep(0.3)
        assert int(client.get(front.url(f"/status?token={token}")).text) == stalled, "the app was not held"

        # and it goes on when the client reads again (the kernel wakes a writer only once a good part of its
        # send buffer is free: read a few MiB)
        def read_some() -> bool:
            for _ in range(64):
                sock.recv(65536)
            return int(client.get(front.url(f"/status?token={token}")).text) > stalled

        _wait_for(read_some)
    assert stalled < 48 * MiB, f"the app sent {stalled} bytes to a client that read none"


def test_app_failure_mid_response_is_an_error_for_the_client(front: Nginx, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(front.url("/unbuffered/fail-midway"))
    assert "reset by peer" in front.error_log() or "prematurely closed" in front.error_log()


@pytest.mark.parametrize("prefix", ["", "/unbuffered"])
@pytest.mark.parametrize(("declared", "sent"), [(5000, 9000), (5000, 2000)])
def test_body_that_disagrees_with_its_content_length_never_reaches_nginx(
    front: Nginx, client: httpx.Client, prefix: str, declared: int, sent: int
) -> None:
    """nginx gets the declared length and not a byte more (then a reset), or less and a reset: the client sees
    either exactly the declared body or a failed response, never a short one passed off as complete."""
    try:
        response = client.get(front.url(f"{prefix}/wrong-length?declared={declared}&sent={sent}"))
    except httpx.RemoteProtocolError:
        assert sent < declared  # nginx had started the response and cut it: the client knows it is incomplete
    else:
        assert response.status_code == 200
        assert response.content == b"w" * declared
    assert "upstream sent more data than specified" not in front.error_log()


@pytest.mark.parametrize("with_length", [True, False])
def test_upstream_block_with_keepalive_still_gets_every_response_at_once(
    backend: Backend, nginx: NginxFactory, with_length: bool
) -> None:
    """nginx never reuses a uWSGI connection, even with `keepalive` in its upstream block; the server closes
    after each response, so no response waits for uwsgi_read_timeout."""
    keepalive_front = nginx(
        f"        location / {{ {uwsgi_params_include()} uwsgi_pass backend; uwsgi_read_timeout 30s; }}\n",
        http_config=f"    upstream backend {{ server {backend.tcp}; keepalive 8; }}\n",
    )
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        for size in (10, 100_000, 3):
            started = time.monotonic()
            response = client.get(keepalive_front.url(f"/large?size={size}&length={int(with_length)}"))
            assert response.content == pattern(size)
            assert time.monotonic() - started < 5


# ---- who the client is -------------------------------------------------------------------------------


def test_client_address_and_scheme_as_nginx_saw_them(front: Nginx) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=TIMEOUT) as sock:
        client_port = sock.getsockname()[1]
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        info = json.loads(_read_to_close(sock).partition(b"\r\n\r\n")[2])
    assert info["client"] == ["127.0.0.1", client_port]  # nginx's client, not nginx's own connection
    assert info["scheme"] == "http"
    assert info["server"] == ["localhost", front.port]


def test_scheme_set_by_uwsgi_param(front: Nginx, client: httpx.Client) -> None:
    assert echo(client.get(front.url("/behind-tls/echo")))["scheme"] == "https"


def test_tls_terminated_by_nginx_gives_https(backend: Backend, nginx: NginxFactory, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    tls_front = nginx(uwsgi_location(backend.tcp), tls=(cert_path, key_path))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with httpx.Client(verify=context, timeout=TIMEOUT, trust_env=False) as client:
        info = echo(client.get(tls_front.url("/echo")))
    assert info["scheme"] == "https"
    assert info["server"] == ["localhost", tls_front.port]


def test_root_path_from_script_name(front: Nginx, client: httpx.Client) -> None:
    info = echo(client.get(front.url("/app/users/echo")))
    assert info["root_path"] == "/app"
    assert info["path"] == "/app/users/echo"


def test_scheme_from_uwsgi_param_https_on(front: Nginx, client: httpx.Client) -> None:
    assert echo(client.get(front.url("/https-on/echo")))["scheme"] == "https"


# ---- nginx rewrites: the app routes by PATH_INFO -----------------------------------------------------


def test_rewrite_break_routes_by_the_rewritten_path(front: Nginx) -> None:
    # A raw request line, so that the client's own percent-encoding reaches nginx as it is.
    with socket.create_connection(("127.0.0.1", front.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /old/caf%C3%A9/echo?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = _read_to_close(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    info = json.loads(body)
    assert info["path"] == "/new/café/echo"
    assert info["raw_path"] == "/new/caf%C3%A9/echo"  # built from PATH_INFO: REQUEST_URI no longer matches it
    assert info["query_string"] == "x=1"
    assert info["root_path"] == ""


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/forums/1/topics/2375?page=1#posts-17408", "/forums/1/topics/2375", "page=1"),
        ("/forums/echo#top", "/forums/echo", ""),
    ],
)
def test_fragment_never_reaches_path_or_query(front: Nginx, target: str, path: str, query: str) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        raw = _read_to_close(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    info = json.loads(body)
    assert (info["path"], info["query_string"]) == (path, query)
    assert "#" not in info["raw_path"]


def test_rewrite_under_a_script_name(front: Nginx, client: httpx.Client) -> None:
    info = echo(client.get(front.url("/app2/old/users/echo")))
    assert info["root_path"] == "/app2"
    assert info["path"] == "/app2/new/users/echo"
    assert info["raw_path"] == "/app2/new/users/echo"


@pytest.mark.parametrize("with_length", [True, False])
def test_buffered_2_mib_response_arrives_whole(front: Nginx, client: httpx.Client, with_length: bool) -> None:
    size = 2 * MiB
    response = client.get(front.url(f"/buffered/large?size={size}&length={int(with_length)}"))
    assert response.status_code == 200
    assert len(response.content) == size
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(pattern(size)).digest()
    assert "upstream prematurely closed" not in front.error_log()


# ---- refusals and disconnects ------------------------------------------------------------------------


def test_websocket_request_gets_a_clear_refusal(front: Nginx, client: httpx.Client) -> None:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    response = client.get(front.url("/chat"), headers=headers)
    assert response.status_code == 501
    assert "WebSocket is not available over the uWSGI protocol" in response.text
    assert "proxy_pass" in response.text


def test_unserved_modifier1_is_a_502_and_logged(front: Nginx, backend: Backend, client: httpx.Client) -> None:
    assert client.get(front.url("/mod5/echo")).status_code == 502
    _wait_for(lambda: "modifier1 5 is not served" in backend.logs())
    assert echo(client.get(front.url("/echo")))["path"] == "/echo"  # the next request is served


@pytest.mark.parametrize("value", [b"a\x07b", b"del\x7f", b"\x1b[31m"])
def test_header_with_a_control_character_is_refused_with_400(front: Nginx, value: bytes) -> None:
    # nginx passes these bytes on (it refuses only NUL, CR and LF); the server must not hand them to the app
    with socket.create_connection(("127.0.0.1", front.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Odd: " + value + b"\r\nConnection: close\r\n\r\n")
        raw = _read_to_close(sock)
    assert raw.startswith(b"HTTP/1.1 400"), raw[:200]
    assert b"HTTP_X_ODD" in raw


def test_app_hears_disconnect_when_the_client_goes_away(front: Nginx, client: httpx.Client) -> None:
    token = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", front.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"POST /hold?token={token} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi".encode())
        _wait_for(lambda: client.get(front.url(f"/status?token={token}")).text == "waiting")
    # the client is gone; nginx closes its upstream connection and the app is told
    _wait_for(lambda: client.get(front.url(f"/status?token={token}")).text == "http.disconnect")


@pytest.mark.parametrize("allowed", [("10.0.0.0/8", "192.168.0.1"), ("10.0.0.0/8", "::1")])
def test_allow_list_refuses_tcp_peers_outside_it_and_unix_sockets_pass(
    start_backend: BackendStarter, nginx: NginxFactory, tmp_path: Path, allowed: tuple[str, ...]
) -> None:
    server = start_backend(tmp_path / "restricted.sock", Config(uwsgi_allow_ips=allowed))
    try:
        restricted = nginx(uwsgi_location(server.tcp, path="/") + uwsgi_location(server.unix, path="/unix/"))
        with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
            assert client.get(restricted.url("/echo")).status_code == 502
            assert client.get(restricted.url("/unix/echo")).status_code == 200
        assert "refused: not in uwsgi_allow_ips" in server.logs()
        assert "upstream prematurely closed" in restricted.error_log() or "reset" in restricted.error_log()
    finally:
        server.stop()


def test_allow_list_cidr_range_admits_nginx(
    start_backend: BackendStarter, nginx: NginxFactory, tmp_path: Path
) -> None:
    server = start_backend(tmp_path / "cidr.sock", Config(uwsgi_allow_ips=("10.0.0.0/8", "127.0.0.0/8")))
    try:
        allowed_front = nginx(uwsgi_location(server.tcp))
        with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
            assert echo(client.get(allowed_front.url("/echo")))["client"][0] == "127.0.0.1"
        assert "refused" not in server.logs()
    finally:
        server.stop()


# ---- helpers -----------------------------------------------------------------------------------------


def _read_to_close(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"condition not met within {timeout} s")


def test_missing_nginx_fails_with_instructions_unless_root(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.nginx_fixture as fixture

    monkeypatch.setattr(fixture, "_find_binary", lambda: None)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match=r"sudo apt-get install -y nginx"):
        fixture.nginx_binary()
