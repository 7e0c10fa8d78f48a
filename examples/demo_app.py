"""The quick-start demo (`python3 dev.py demo`): a plain ASGI app showing what the server does.

Routes: `/` plain text, `/json` JSON, `/stream` a response streamed in ten chunks, `/echo` the request body
back, `/ws` a WebSocket echo (text and binary). `python3 dev.py demo-h2` serves the same app over TLS with
HTTP/2 offered by ALPN, on a throw-away certificate.
"""

import json
from typing import Any

ROUTES = {
    "/": "plain text",
    "/json": "JSON",
    "/stream": "a response streamed in ten chunks",
    "/echo": "POST a body, get it back",
    "/ws": "WebSocket echo",
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)


async def _lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/json":
        body = json.dumps({"message": "Hello, world!", "path": path, "http_version": scope["http_version"]})
        await _reply(send, 200, body.encode(), b"application/json")
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(10):
            await send({"type": "http.response.body", "body": f"chunk {i}\n".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/echo":
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await _reply(send, 200, body, b"application/octet-stream")
    elif path == "/ws":  # a plain GET where a WebSocket was expected: say how to reach it
        await _reply(send, 426, b"/ws is a WebSocket echo: connect with ws://\n", b"text/plain; charset=utf-8")
    else:
        await _reply(send, 200, b"Hello, world!\n", b"text/plain; charset=utf-8")


async def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1008, "reason": "the WebSocket route is /ws"})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        else:  # websocket.disconnect
            return


async def _reply(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})
