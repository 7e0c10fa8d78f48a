"""Serve an ASGI app with asyncio and asgi-http1 alone: no Gunicorn, no other server.

    python examples/standalone.py            # http://127.0.0.1:8000
    PORT=0 python examples/standalone.py     # any free port; the address is printed

Ctrl+C or SIGTERM stops it gracefully: the listening socket closes, requests in flight finish, idle keep-alive
connections close, then the app's lifespan shutdown runs. The test suite runs this very file
(tests/test_docs_examples.py), and the documentation shows it as it is.
"""

from __future__ import annotations

import asyncio
import os

import asgi_core
from asgi_core import Config, Receive, Scope, Send, serve
from asgi_http1 import HTTP1Protocol


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app: greets on every path, echoes the body of a POST, and counts requests in `state`."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "Hello from asyncio + asgi-http1"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        body = b""
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
    else:
        body = f"{scope['state']['greeting']}, path {scope['path']}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def announce(server: asgi_core.Server) -> None:
    host, port = server.sockets[0].getsockname()[:2]
    print(f"Serving on http://{host}:{port}", flush=True)


def main() -> None:
    # Every protocol setting lives in one validated Config; a bad value raises ConfigError naming it.
    config = Config(keep_alive_timeout=5.0, max_request_body_size=1024 * 1024)
    port = int(os.environ.get("PORT", "8000"))
    asyncio.run(serve(app, HTTP1Protocol, host="127.0.0.1", port=port, config=config, ready=announce))


if __name__ == "__main__":
    main()
