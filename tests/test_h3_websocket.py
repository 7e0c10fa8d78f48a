"""WebSocket over HTTP/3 (RFC 9220) end to end: asgi-core's Server with asgi-h3 and asgi-ws from the registry,
aioquic's client sending the extended CONNECT over loopback UDP, and wsproto's client frame layer on the
stream: the handshake's 200, messages both ways, the closing handshake, and the app's scope."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import trustme
from asgi_core import Config, Receive, Scope, Send, Server, listen
from asgi_h3 import attach_certificate
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from tests.h3_client import Response, connect

SCOPES: list[Scope] = []


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    SCOPES.append(scope)
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": "chat"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": "echo: " + message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


def server_tls(tmp_path: Path) -> tuple[ssl.SSLContext, trustme.CA]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(certfile)
    cert.private_key_pem.write_to_path(keyfile)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    attach_certificate(context, certfile, keyfile)
    return context, ca


def test_websocket_over_http3(tmp_path: Path) -> None:
    SCOPES.clear()
    tls, ca = server_tls(tmp_path)

    async def main() -> None:
        server = Server(echo, Config(http_protocols=("h3", "h1")), ssl_context=tls)
        sock = listen("127.0.0.1", 0)
        await server.start([sock])
        try:
            async with connect(sock.getsockname()[1], ca.cert_pem.bytes()) as client:
                stream_id = client._quic.get_next_available_stream_id()
                head = [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"https"),
                    (b":authority", b"localhost"),
                    (b":path", b"/chat?room=1"),
                    (b"sec-websocket-version", b"13"),
                    (b"sec-websocket-protocol", b"chat"),
                ]
                client.h3.send_headers(stream_id, head, end_stream=False)
                answer = client.responses[stream_id] = Response()
                client.transmit()
                for _ in range(500):
                    if answer.heads:
                        break
                    await asyncio.sleep(0.01)
                assert answer.status == 200
                assert answer.headers[b"sec-websocket-protocol"] == b"chat"
                ws = Connection(ConnectionType.CLIENT)
                received: list[Any] = []

                async def exchange(data: bytes) -> None:
                    client.h3.send_data(stream_id, data, end_stream=False)
                    client.transmit()

                async def events(count: int) -> None:
                    seen = 0
                    for _ in range(500):
                        if answer.body:
                            ws.receive_data(bytes(answer.body))
                            answer.body.clear()
                        for event in ws.events():
                            received.append(event)
                            seen += 1
                        if seen >= count:
                            return
                        await asyncio.sleep(0.01)
                    raise AssertionError(f"only {received}")

                await exchange(ws.send(TextMessage(data="hello")))
                await events(1)
                await exchange(ws.send(BytesMessage(data=b"abc")))
                await events(1)
                assert isinstance(received[0], TextMessage)
                assert received[0].data == "echo: hello"
                assert isinstance(received[1], BytesMessage)
                assert received[1].data == b"cba"
                await exchange(ws.send(CloseConnection(code=1000, reason="bye")))
                await events(1)
                assert isinstance(received[2], CloseConnection)
                assert received[2].code == 1000
                # After the closing handshake the server ends the stream (its FIN), as it would close TCP.
                await asyncio.wait_for(answer.done.wait(), 5)
                assert answer.reset is None
        finally:
            await server.shutdown(1.0)
            sock.close()

    asyncio.run(main())
    (scope,) = SCOPES
    assert scope["http_version"] == "3"
    assert scope["path"] == "/chat"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["chat"]
    assert scope["scheme"] == "wss"
