"""Apps for the operations tests (tests/test_worker_ops_*.py), served by a real Gunicorn master with
`--chdir tests`: memory that grows on purpose, and the TLS extension echoed back. This module holds no tests."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

Scope = dict[str, Any]

#: What the leaky app keeps alive: it only ever grows, as a real leak does.
_LEAKED: list[bytearray] = []
_LEAK_PER_REQUEST = 16 * 1024
#: The pause per leaking request: it bounds how fast memory grows under load, so a test never eats the machine.
_LEAK_PAUSE = 0.005


async def _reply(send: Any, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def leaky_app(scope: Scope, receive: Any, send: Any) -> None:
    """Leaks 16 KiB per request to /leak (touched, so it is resident); /rss and /pid tell the worker's RSS in
    bytes and its pid; other paths leak nothing."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/leak":
        _LEAKED.append(bytearray(b"x") * _LEAK_PER_REQUEST)
        await asyncio.sleep(_LEAK_PAUSE)
    elif path == "/rss":
        with open("/proc/self/statm", "rb") as statm:  # noqa: ASYNC230 - a tiny local read
            await _reply(send, str(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")).encode())
        return
    elif path == "/pid":
        await _reply(send, str(os.getpid()).encode())
        return
    await _reply(send, b"ok")


async def tls_app(scope: Scope, receive: Any, send: Any) -> None:
    """Answers (HTTP) or sends once then closes (WebSocket) the scope's TLS extension as JSON."""
    if scope["type"] not in ("http", "websocket"):
        return
    info = {"http_version": scope["http_version"], "tls": scope["extensions"].get("tls")}
    body = json.dumps(info)
    if scope["type"] == "http":
        await _reply(send, body.encode(), b"application/json")
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": body})
    await send({"type": "websocket.close", "code": 1000})
