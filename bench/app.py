"""The one ASGI app every server in the benchmark runs, with a route per scenario.

Plain ASGI, standard library only, so that no framework cost hides the server's own: every server runs this
module unchanged, and the figures differ only by what the server does around it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PLAINTEXT = b"Hello, world!"
STREAM_CHUNKS = tuple(b"chunk %02d of the streamed response\n" % i for i in range(10))
ONE_MIB = b"x" * (1024 * 1024)

_TEXT = [(b"content-type", b"text/plain")]
_JSON = [(b"content-type", b"application/json")]
_OCTETS = [(b"content-type", b"application/octet-stream")]


def _head(headers: list[tuple[bytes, bytes]], length: int | None, status: int = 200) -> Message:
    if length is not None:
        headers = [*headers, (b"content-length", b"%d" % length)]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _whole(send: Send, headers: list[tuple[bytes, bytes]], body: bytes, status: int = 200) -> None:
    await send(_head(headers, len(body), status))
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away while sending the body")
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path in {"/", "/plaintext"}:
        await _whole(send, _TEXT, PLAINTEXT)
    elif path == "/json":
        # Serialised on every request, as a real endpoint would.
        await _whole(send, _JSON, json.dumps({"message": "Hello, world!"}).encode())
    elif path == "/echo":
        await _whole(send, _OCTETS, await _read_body(receive))
    elif path == "/stream":
        await send(_head(_TEXT, None))
        for chunk in STREAM_CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/1mib":
        await _whole(send, _OCTETS, ONE_MIB)
    else:
        await _whole(send, _TEXT, b"not found", 404)


async def _websocket(receive: Receive, send: Send) -> None:
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        await _http(scope, receive, send)
    elif kind == "websocket":
        await _websocket(receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
