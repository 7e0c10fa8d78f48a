# ruff: noqa: INP001, T201 - a script, not a package; it reports its port on stdout
"""A standalone WebSocket echo server: asyncio + asgi-http1 + asgi-wsproto, no Gunicorn.

    python echo_server.py --port 9001

Every text or binary message is sent straight back. With `--port 0` the kernel picks a free port; the first
line printed says which (the Autobahn test in tests/test_ws_autobahn.py starts it that way).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asgi_core
from asgi_core import Config, Message, Receive, Scope, Send, serve
from asgi_http1 import HTTP1Protocol


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 426, "headers": [(b"upgrade", b"websocket")]})
        await send({"type": "http.response.body", "body": b"this server speaks WebSocket only\n"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message: Message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        echo = {"text": message["text"]} if message.get("text") is not None else {"bytes": message["bytes"]}
        try:
            await send({"type": "websocket.send", **echo})
        except OSError:  # asgi_core.ClientDisconnected: the peer closed while we echoed; its disconnect is next
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()

    def ready(server: asgi_core.Server) -> None:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{args.host}:{port}", flush=True)

    config = Config(websocket_ping_interval=None)  # an echo peer needs no keepalive
    asyncio.run(serve(app, HTTP1Protocol, host=args.host, port=args.port, config=config, ready=ready))
    sys.exit(0)


if __name__ == "__main__":
    main()
