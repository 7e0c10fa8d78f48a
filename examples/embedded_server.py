"""Run asgi-core's Server inside your own asyncio program: the serving layer of the Gunicorn worker, without
Gunicorn.

    python examples/embedded_server.py                      # http://127.0.0.1:8000 (HTTP/1.1, h2c, WebSocket)
    TLS_PORT=8443 CERTFILE=cert.pem KEYFILE=key.pem python examples/embedded_server.py   # and HTTPS with HTTP/2

One Server per listening port: a cleartext one (HTTP/1.1, HTTP/2 by prior knowledge, WebSocket, PROXY v2 from
a local load balancer) and, given a certificate, a TLS one (HTTP/2 or HTTP/1.1 by ALPN). Both share the app
and its lifespan state. SIGTERM or Ctrl+C drains both without losing a request, then lifespan shutdown runs.
The test suite runs this very file (tests/test_docs_examples.py) and the documentation shows it as it is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from dataclasses import replace

from asgi_core import Config, Lifespan, Receive, Scope, Send, Server, listen


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Says which protocol and client a request came with; echoes WebSocket messages."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            scope["state"]["started"] = "yes"
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": f"echo: {message.get('text')}"})
    elif scope["type"] == "http":
        client = scope["client"][0] if scope["client"] else "-"
        text = (
            f"HTTP/{scope['http_version']} {scope['scheme']} from {client}, lifespan {scope['state']['started']}\n"
        )
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": text.encode()})


async def main() -> None:
    # HTTP/2 is served by ALPN over TLS and by its preface in cleartext (for trusted peers, here localhost);
    # a PROXY v2 header from a trusted peer (a local HAProxy) announces the real client.
    config = Config(
        http_protocols=("h2", "h1"),
        http2_cleartext="both",
        proxy_protocol="v2",
        max_connections=int(os.environ.get("MAX_CONNECTIONS", "1000")),
    )
    lifespan = Lifespan(app, config)
    await lifespan.startup()
    servers = [
        (Server(app, config, state=lifespan.state), listen("127.0.0.1", int(os.environ.get("PORT", "8000"))))
    ]
    if os.environ.get("CERTFILE"):
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(os.environ["CERTFILE"], os.environ["KEYFILE"])
        tls_config = replace(config, http2_cleartext="off")  # over TLS, ALPN chooses
        tls_server = Server(app, tls_config, ssl_context=tls, state=lifespan.state)
        servers.append((tls_server, listen(port=int(os.environ["TLS_PORT"]))))
    for server, sock in servers:
        await server.start([sock])
        host, port = sock.getsockname()[:2]
        print(f"Serving {server.describe()} on {host}:{port}", flush=True)

    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    # Both drain at once: idle keep-alive connections get a last request, HTTP/2 gets its two GOAWAYs, and what is
    # still open near the end (WebSockets, streams) is told the server is going away.
    await asyncio.gather(*(server.shutdown(timeout=10.0) for server, _ in servers))
    served = sum(server.requests_served for server, _ in servers)
    print(f"Stopped after {served} requests", flush=True)
    await lifespan.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
