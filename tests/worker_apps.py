"""ASGI apps the worker tests serve through real Gunicorn processes (`--chdir tests worker_apps:app`).

This module holds no tests; it is named like the worker tests so that it sits with them. Behaviour that a
test needs to observe from outside the server is reported over HTTP or, for lifespan, appended to the file
named by the WORKER_TEST_EVENTS environment variable.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]


def _record(event: str) -> None:
    path = os.environ.get("WORKER_TEST_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{event} {os.getpid()}\n")


async def _lifespan(scope: Scope, receive: Any, send: Any) -> None:
    mode = os.environ.get("WORKER_TEST_LIFESPAN", "ok")
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if mode == "fail":
                await send({"type": "lifespan.startup.failed", "message": "database unreachable (test)"})
                return
            if mode == "hang":
                await asyncio.sleep(3600)
            scope["state"]["greeting"] = "hello from lifespan"
            _record("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if mode == "hang-shutdown":
                await asyncio.sleep(3600)
            _record("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _reply(send: Any, body: bytes, status: int = 200, content_type: bytes = b"text/plain") -> None:
    headers = [(b"content-type", content_type), (b"x-test", b"yes")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _websocket(receive: Any, send: Any) -> None:
    """Echoes every message; the close code the server reports is recorded."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            _record(f"websocket-closed-{message.get('code')}")
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
    if path.endswith("/pid"):
        await _reply(send, str(os.getpid()).encode())
    elif path.endswith("/scope"):
        info = {
            "client": scope["client"],
            "server": scope["server"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "root_path": scope["root_path"],
            "http_version": scope["http_version"],
            "state": scope.get("state", {}).get("greeting"),
            "loop": type(asyncio.get_running_loop()).__module__,
        }
        await _reply(send, json.dumps(info).encode(), content_type=b"application/json")
    elif path.endswith("/slow"):
        try:
            await asyncio.sleep(float(query.get("t", "1")))
        except asyncio.CancelledError:
            _record("cancelled")
            raise
        await _reply(send, b"slow done")
    elif path.endswith("/then-block"):
        await _reply(send, b"done")
        time.sleep(float(query.get("t", "3")))  # noqa: ASYNC251 - work after the response, holding the loop
    elif path.endswith("/large"):
        await _reply(send, b"x" * int(query.get("n", "4194304")), content_type=b"application/octet-stream")
    elif path.endswith("/block"):
        time.sleep(float(query.get("t", "30")))  # noqa: ASYNC251 - blocks the event loop on purpose
        await _reply(send, b"unblocked")
    elif path.endswith("/echo"):
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _reply(send, str(size).encode())
    elif path.endswith("/events"):
        await _event_stream(receive, send)
    elif path.endswith("/status"):
        await _reply(send, b"status", status=int(query.get("code", "200")))
    else:
        await _reply(send, b"ok")


async def _event_stream(receive: Any, send: Any) -> None:
    """Server-sent events until the client (or the server, shutting down) ends it: `http.disconnect` recorded."""
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def until_disconnect() -> dict[str, Any]:
        while (message := await receive())["type"] != "http.disconnect":
            pass
        return message  # type: ignore[no-any-return]

    disconnected = asyncio.ensure_future(until_disconnect())
    number = 0
    while not disconnected.done():
        await send({"type": "http.response.body", "body": b"data: %d\n\n" % number, "more_body": True})
        number += 1
        await asyncio.wait({disconnected}, timeout=0.1)
    _record(f"events-{disconnected.result()['type']}")


async def no_lifespan_app(scope: Scope, receive: Any, send: Any) -> None:
    """An app that does not speak the lifespan protocol, as many do not (Django)."""
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']}")
    await app(scope, receive, send)


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    """A WSGI app, to check that the worker refuses one clearly instead of failing per request."""
    start_response("200 OK", [])
    return [b"wsgi"]
