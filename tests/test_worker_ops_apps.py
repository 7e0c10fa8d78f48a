"""Apps for the operations tests (tests/test_worker_ops_*.py), served by a real Gunicorn master with
`--chdir tests`: memory that grows on purpose, and the TLS extension echoed back. This module holds no tests."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]

#: What the leaky app keeps alive: it only ever grows, as a real leak does.
_LEAKED: list[bytearray] = []
_LEAK_PER_REQUEST = 256 * 1024


async def _reply(send: Any, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def leaky_app(scope: Scope, receive: Any, send: Any) -> None:
    """Leaks 256 KiB per request to /leak (touched, so it is resident); other paths leak nothing."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/leak":
        _LEAKED.append(bytearray(b"x") * _LEAK_PER_REQUEST)
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
