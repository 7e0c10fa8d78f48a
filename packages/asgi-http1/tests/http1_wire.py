"""Helpers for tests over real loopback sockets: a server in a background thread, raw clients, a response reader.

Shared by the wire tests of this package; pytest imports tests by path (`--import-mode=importlib`), so test modules
put this directory on `sys.path` to import it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import pytest
from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext, serve
from asgi_http1 import HTTP1Protocol

App = Callable[[Scope, Receive, Send], Awaitable[None]]
TIMEOUT = 5.0


# Every test of a module that imports this fixture runs once per head parser: h11 (the reference) and httptools (the
# fast one), which must behave exactly alike. The parser is chosen through `ASGI_HTTP1_PARSER`, as a user would
# force it. Module scope: Hypothesis tests may not depend on function-scoped fixtures.
@pytest.fixture(scope="module", params=["h11", "httptools"], autouse=True)
def http1_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASGI_HTTP1_PARSER", request.param)
        yield request.param


@dataclass
class Server:
    port: int
    loop: asyncio.AbstractEventLoop
    errors: list[dict[str, Any]]
    #: The server's context when the test built its own server (`direct`), to drive a drain from the test.
    context: ServerContext | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(
    app: App,
    config: Config | None = None,
    *,
    registry: Registry | None = None,
    ssl_context: ssl.SSLContext | None = None,
    direct: bool = False,
) -> Iterator[Server]:
    """Run `app` on a fresh server in a background thread; stop it (and check the loop saw no error) after.

    By default through `asgi_core.serve`; with a registry, TLS or `direct`, in a plain asyncio server of the
    test's own whose context is `Server.context`."""
    config = config or Config(lifespan="off")
    started = threading.Event()
    box: dict[str, Any] = {"errors": []}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: box["errors"].append(context))
        stop = asyncio.Event()
        box["loop"], box["stop"] = loop, stop

        def ready(server: Any) -> None:  # asgi_core.Server, or an asyncio.Server below
            box["port"] = server.sockets[0].getsockname()[1]
            started.set()

        if registry is None and ssl_context is None and not direct:
            await serve(app, HTTP1Protocol, port=0, config=config, stop=stop, ready=ready, graceful_timeout=2)
            return
        # The protocol in a plain asyncio server of our own (with a registry holding a test upgrade handler).
        context = ServerContext(app=app, config=config, registry=registry)
        box["context"] = context
        server = await loop.create_server(lambda: HTTP1Protocol(context), "127.0.0.1", 0, ssl=ssl_context)
        ready(server)
        await stop.wait()
        server.close()
        context.drain_connections()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="http1-test-server", daemon=True)
    thread.start()
    assert started.wait(TIMEOUT), "server did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield Server(box["port"], box["loop"], box["errors"], box.get("context"))
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "server did not stop"
    if "error" in box:
        raise box["error"]
    assert not box["errors"], box["errors"]


@contextmanager
def connect(server: Server, *, rcvbuf: int | None = None) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(("127.0.0.1", server.port))
        yield sock
    finally:
        sock.close()


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    trailers: dict[bytes, bytes]


def _read_fields(stream: BinaryIO) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return fields


def read_response(stream: BinaryIO, *, head: bool = False) -> Response:
    """One response from a buffered socket file: Content-Length, chunked, or until-close framing."""
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    status = int(status_line.split()[1])
    headers = _read_fields(stream)
    trailers: dict[bytes, bytes] = {}
    if head or status < 200 or status in (204, 304):
        body = b""
    elif headers.get(b"transfer-encoding") == b"chunked":
        parts = []
        while size := int(stream.readline().split(b";")[0], 16):
            parts.append(stream.read(size))
            assert stream.read(2) == b"\r\n"
        trailers = _read_fields(stream)
        body = b"".join(parts)
    elif b"content-length" in headers:
        body = stream.read(int(headers[b"content-length"]))
    else:
        body = stream.read()
    return Response(status, headers, body, trailers)


def exchange(server: Server, raw: bytes, *, head: bool = False) -> tuple[Response, bool]:
    """Send raw bytes on a new connection; the response, and whether the server then closed the connection."""
    with connect(server) as sock:
        sock.sendall(raw)
        stream = sock.makefile("rb")
        response = read_response(stream, head=head)
        return response, closed_by_peer(sock, stream)


def closed_by_peer(sock: socket.socket, stream: BinaryIO, wait: float = 2.0) -> bool:
    sock.settimeout(wait)
    try:
        return stream.read(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def request(path: str = "/", *, method: str = "GET", headers: str = "", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}{length}\r\n".encode() + body


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the request body and a few facts of the request."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    client = scope["client"]
    facts = [
        (b"x-method", scope["method"].encode()),
        (b"x-path", scope["path"].encode()),
        (b"x-client-port", str(client[1]).encode()),
        (b"x-http-version", scope["http_version"].encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": facts})
    await send({"type": "http.response.body", "body": bytes(body)})


def stream_parts(*parts: bytes, status: int = 200) -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})

    return app
