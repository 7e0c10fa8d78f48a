"""The ASGI app behind nginx in the uWSGI integration tests; importable by a server process as
`test_uwsgi_apps:app` (with `--chdir tests`), standard library only. This module holds no tests.

Routes (by path suffix, so that any nginx location prefix works):
    .../echo           the scope and a digest of the request body, as JSON
    .../large          `size` bytes, with a Content-Length (`length=1`, the default) or streamed without one
    .../stream         "first\n", then waits until `.../release?token=...`, then "second\n"
    .../release        releases a waiting stream
    .../hold           reads the body, then waits for http.disconnect and records it under `token`
    .../status         what `.../hold` recorded for `token`
    .../fail-midway    starts a streamed response, then raises
    .../flood          streams `size` bytes in 64 KiB messages, recording under `token` how many it sent
    .../wrong-length   declares a Content-Length of `declared` and streams `sent` bytes in 1000-byte pieces
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
_releases: dict[str, asyncio.Event] = {}
_outcomes: dict[str, str] = {}
_PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern(size: int) -> bytes:
    """The body `.../large` sends for `size`: recomputable by the test to compare digests."""
    return (_PATTERN * (size // len(_PATTERN) + 1))[:size]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode("latin-1")).items()}
    name = scope["path"].rsplit("/", 1)[-1]
    handler = _ROUTES.get(name, _echo)
    await handler(scope, query, receive, send)


async def _read_body(receive: Any) -> tuple[bytes, int]:
    parts, messages = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away while sending the body")
        messages += 1
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), messages


async def _reply(send: Any, body: bytes, status: int = 200, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def _echo(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    body, messages = await _read_body(receive)
    info = {
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
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "messages": messages,
    }
    await _reply(send, json.dumps(info).encode(), content_type=b"application/json")


async def _large(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    size = int(query.get("size", "0"))
    headers = [(b"content-type", b"application/octet-stream")]
    if query.get("length", "1") == "1":
        headers.append((b"content-length", str(size).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    data = pattern(size)
    for offset in range(0, size, 256 * 1024):
        await send({"type": "http.response.body", "body": data[offset : offset + 256 * 1024], "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _stream(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    release = _releases.setdefault(query["token"], asyncio.Event())
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
    await asyncio.wait_for(release.wait(), 10)
    await send({"type": "http.response.body", "body": b"second\n"})


async def _release(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    _releases.setdefault(query["token"], asyncio.Event()).set()
    await _reply(send, b"released")


async def _hold(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    token = query["token"]
    await _read_body(receive)
    _outcomes[token] = "waiting"
    try:
        message = await asyncio.wait_for(receive(), 10)
        _outcomes[token] = message["type"]
    except asyncio.TimeoutError:
        _outcomes[token] = "timed out"
        await _reply(send, b"nobody left")


async def _status(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    await _reply(send, _outcomes.get(query["token"], "unknown").encode())


async def _fail_midway(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"x" * 100_000, "more_body": True})
    await asyncio.sleep(0.05)
    raise RuntimeError("the application failed in the middle of its response")


async def _flood(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    token, size = query["token"], int(query["size"])
    chunk = b"f" * 65536
    sent = 0
    _outcomes[token] = "0"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    try:
        while sent < size:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
            _outcomes[token] = str(sent)
        await send({"type": "http.response.body", "body": b""})
    except OSError:
        pass  # the client went away (ClientDisconnected): what was sent is recorded


async def _wrong_length(scope: Scope, query: dict[str, str], receive: Any, send: Any) -> None:
    declared, size = int(query["declared"]), int(query["sent"])
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(declared).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for offset in range(0, size, 1000):
        await send({"type": "http.response.body", "body": b"w" * min(1000, size - offset), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


_ROUTES = {
    "echo": _echo,
    "large": _large,
    "stream": _stream,
    "release": _release,
    "hold": _hold,
    "status": _status,
    "fail-midway": _fail_midway,
    "wrong-length": _wrong_length,
    "flood": _flood,
}
