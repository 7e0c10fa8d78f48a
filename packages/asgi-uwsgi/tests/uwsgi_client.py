"""A raw uWSGI client, a server runner and test apps, shared by this package's protocol tests (importable
thanks to conftest.py). Each scenario runs in its own event loop on a free loopback port, bounded in time,
and the server is stopped at its end."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import asgi_core
from asgi_core import ASGIApp, Config, Receive, Scope, Send, ServerContext, serve
from asgi_uwsgi import PLUGIN, encode_packet

T = TypeVar("T")
SCENARIO_TIMEOUT = 15.0
LOG = "asgi_core.error"


# ---- a raw uWSGI client ------------------------------------------------------------------------------


def nginx_vars(
    method: str = "GET",
    uri: str = "/",
    *,
    body: bytes = b"",
    content_length: int | None = None,
    headers: Iterable[tuple[str, str]] = (),
    extra: Iterable[tuple[str, str]] = (),
) -> list[tuple[bytes, bytes]]:
    """Variables in the order and form nginx's uwsgi_params sends them."""
    path, _, query = uri.partition("?")
    if content_length is None:
        content_length = len(body)
    pairs = [
        ("QUERY_STRING", query),
        ("REQUEST_METHOD", method),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", str(content_length) if content_length else ""),
        ("REQUEST_URI", uri),
        ("PATH_INFO", unquote(path)),  # $document_uri: percent-decoded
        ("DOCUMENT_ROOT", "/srv"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("REMOTE_ADDR", "192.0.2.7"),
        ("REMOTE_PORT", "40123"),
        ("SERVER_PORT", "80"),
        ("SERVER_NAME", "example.org"),
        ("HTTP_HOST", "example.org"),
        *((f"HTTP_{name.upper().replace('-', '_')}", value) for name, value in headers),
        *extra,
    ]
    return [(name.encode(), value.encode()) for name, value in pairs]


def packet(method: str = "GET", uri: str = "/", *, body: bytes = b"", **kwargs: Any) -> bytes:
    return encode_packet(nginx_vars(method, uri, body=body, **kwargs), body)


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key.lower() == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(raw: bytes) -> Response:
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, f"no complete response head in {raw[:200]!r}"
    status_line, *lines = head.split(b"\r\n")
    version, status, _ = status_line.split(b" ", 2)
    assert version == b"HTTP/1.1"
    headers = []
    for line in lines:
        name, value = line.split(b": ", 1)
        headers.append((name, value))
    return Response(int(status), headers, body)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_to_close(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes: how every uWSGI response ends."""
    return await asyncio.wait_for(reader.read(), 10)


async def exchange(port: int, data: bytes) -> Response:
    reader, writer = await connect(port)
    try:
        writer.write(data)
        await writer.drain()
        return parse_response(await read_to_close(reader))
    finally:
        writer.close()


async def run_server(
    app: ASGIApp,
    scenario: Callable[[int], Awaitable[T]],
    *,
    config: Config | None = None,
    protocol_factory: Callable[[ServerContext], asyncio.Protocol] = PLUGIN.create_protocol,
) -> T:
    """Serve `app` on a free loopback port while `scenario(port)` runs, then stop the server gracefully."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[asgi_core.Server] = loop.create_future()
    stop = asyncio.Event()
    server_task = loop.create_task(
        serve(
            app,
            protocol_factory,
            host="127.0.0.1",
            port=0,
            config=config or Config(lifespan="off"),
            stop=stop,
            ready=ready.set_result,
            graceful_timeout=5,
        )
    )
    try:
        server = await asyncio.wait_for(asyncio.shield(ready), 5)
        port: int = server.sockets[0].getsockname()[1]
        return await asyncio.wait_for(scenario(port), SCENARIO_TIMEOUT)
    finally:
        stop.set()
        await asyncio.wait_for(server_task, 10)


def run(app: ASGIApp, scenario: Callable[[int], Awaitable[T]], **kwargs: Any) -> T:
    return asyncio.run(run_server(app, scenario, **kwargs))


# ---- apps --------------------------------------------------------------------------------------------


async def read_body(receive: Receive) -> tuple[bytes, int]:
    body, messages = [], 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        messages += 1
        body.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(body), messages


def describe(scope: Scope) -> dict[str, Any]:
    return {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "root_path": scope["root_path"],
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "client": scope["client"],
        "server": scope["server"],
        "scheme": scope["scheme"],
        "http_version": scope["http_version"],
        "extensions": sorted(scope["extensions"]),
    }


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the scope and a digest of the body it read."""
    body, messages = await read_body(receive)
    info = describe(scope) | {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(), "messages": messages}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(info).encode()})


async def closed_without_reply(port: int, data: bytes, *, eof: bool = False) -> bytes:
    reader, writer = await connect(port)
    writer.write(data)
    if eof:
        writer.write_eof()
    raw = await read_to_close(reader)
    writer.close()
    return raw
