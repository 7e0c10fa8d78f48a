"""The opening handshake over HTTP/1.1 and HTTP/2, refusals, denial responses and the websocket scope."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace
from typing import Any

import pytest
from asgi_core import AccessRecord, ClientDisconnected, Config, Receive, Scope, Send, ServerContext
from asgi_wsproto import UPGRADE
from ws_peer import MemoryStream, Peer, Recorder, echo, h2_request, parse_upgrade, run, until
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage
from wsproto.utilities import generate_accept_token

KEY = base64.b64encode(b"0123456789abcdef")


def raw_request(*lines: bytes, method: bytes = b"GET", version: bytes = b"1.1") -> bytes:
    head = [b"%s /ws HTTP/%s" % (method, version), b"Host: example.com", *lines]
    return b"\r\n".join(head) + b"\r\n\r\n"


def valid_lines(**replace_with: bytes | None) -> list[bytes]:
    fields: dict[str, bytes | None] = {
        "upgrade": b"websocket",
        "connection": b"Upgrade",
        "sec-websocket-key": KEY,
        "sec-websocket-version": b"13",
    }
    fields.update(replace_with)
    return [name.encode() + b": " + value for name, value in fields.items() if value is not None]


async def never_called(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the app must not see an invalid handshake")


def test_accept_answers_101_with_token_subprotocol_and_app_headers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-room", b"7")]})
        await receive()

    async def scenario() -> None:
        peer = Peer(app, subprotocols=["chat", "superchat"])
        accepted = await peer.open()
        assert accepted is not None
        assert accepted.subprotocol == "chat"  # wsproto's client checked Sec-WebSocket-Accept too
        assert (b"x-room", b"7") in accepted.extra_headers
        names = [name for name, _ in accepted.extra_headers]
        assert b"server" in names
        assert b"date" in names
        peer.protocol.connection_lost(None)

    run(scenario())


def test_accept_token_is_rfc_6455_example() -> None:
    # RFC 6455 section 1.3: this key gives this accept value.
    assert generate_accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    async def scenario() -> None:
        app = Recorder()
        lines = valid_lines(**{"sec-websocket-key": b"dGhlIHNhbXBsZSBub25jZQ=="})
        peer = Peer(app, request=parse_upgrade(raw_request(*lines)))
        peer.start()
        await until(lambda: b"\r\n\r\n" in peer.transport.data)
        head = bytes(peer.transport.data).lower()
        assert head.startswith(b"http/1.1 101 switching protocols\r\n")
        assert b"\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n" in head
        assert b"\r\nupgrade: websocket\r\n" in head
        assert b"\r\nconnection: upgrade\r\n" in head
        peer.protocol.connection_lost(None)

    run(scenario())


def test_websocket_scope() -> None:
    async def scenario() -> None:
        app = Recorder()
        context = ServerContext(app=app, config=Config(root_path="/app"), state={"db": "pool"})
        peer = Peer(app, context=context, target="/chat/r%C3%A9?x=1", subprotocols=["a", "b"])
        await peer.open()
        await until(lambda: bool(app.received))
        scope = app.scope
        assert scope["type"] == "websocket"
        assert scope["asgi"]["version"] == "3.0"
        assert scope["http_version"] == "1.1"
        assert scope["scheme"] == "ws"
        assert scope["path"] == "/app/chat/ré"
        assert scope["raw_path"] == b"/app/chat/r%C3%A9"
        assert scope["query_string"] == b"x=1"
        assert scope["root_path"] == "/app"
        assert scope["subprotocols"] == ["a", "b"]
        assert scope["client"] == ("127.0.0.1", 50000)
        assert scope["server"] == ("127.0.0.1", 8000)
        assert scope["state"] == {"db": "pool"}
        assert scope["state"] is not context.state  # a copy per connection, as lifespan state must be
        assert scope["extensions"] == {"websocket.http.response": {}}
        assert (b"host", b"example.com") in scope["headers"]
        assert app.received == [{"type": "websocket.connect"}]
        peer.protocol.connection_lost(None)

    run(scenario())


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (raw_request(*valid_lines(**{"sec-websocket-key": None})), 400),
        (raw_request(*valid_lines(**{"sec-websocket-key": b"c2hvcnQ="})), 400),
        (raw_request(*valid_lines(**{"sec-websocket-key": b"not base64 at all!!!!!!="})), 400),
        (raw_request(*valid_lines(), b"Sec-WebSocket-Key: " + KEY), 400),
        (raw_request(*valid_lines(**{"sec-websocket-version": None})), 400),
        (raw_request(*valid_lines(**{"sec-websocket-version": b"8"})), 426),
        (raw_request(*valid_lines(), b"Content-Length: 0", method=b"POST"), 400),
    ],
    ids=["no-key", "short-key", "bad-base64", "two-keys", "no-version", "version-8", "post"],
)
def test_invalid_handshake_gets_4xx_and_a_clean_close(request_bytes: bytes, status: int) -> None:
    async def scenario() -> None:
        request = parse_upgrade(request_bytes)
        assert UPGRADE.accepts(request)  # it asks for WebSocket: ours to answer, not the app's as plain HTTP
        peer = Peer(never_called, request=request)
        peer.start()
        await peer.closed()
        response = bytes(peer.transport.data)
        assert response.startswith(b"HTTP/1.1 %d " % status)
        assert b"\r\nconnection: close\r\n" in response
        assert not peer.transport.aborted
        if status == 426:
            assert b"\r\nsec-websocket-version: 13\r\n" in response  # RFC 6455 4.2.2: name what we speak
        assert peer.protocol.session is None
        await until(lambda: peer.protocol not in peer.context.connections)

    run(scenario())


@pytest.mark.parametrize(
    ("request_bytes", "accepted"),
    [
        (raw_request(*valid_lines()), True),
        (raw_request(*valid_lines(connection=b"keep-alive, Upgrade")), True),
        (raw_request(*valid_lines(connection=b"keep-alive")), False),
        (raw_request(*valid_lines(connection=None)), False),
        (raw_request(*valid_lines(), version=b"1.0"), False),
    ],
    ids=["valid", "connection-list", "no-upgrade-option", "no-connection", "http-1.0"],
)
def test_accepts_follows_http_upgrade_rules(request_bytes: bytes, accepted: bool) -> None:
    assert UPGRADE.accepts(parse_upgrade(request_bytes)) is accepted


def test_accepts_extended_connect_only() -> None:
    assert UPGRADE.accepts(h2_request())
    assert not UPGRADE.accepts(replace(h2_request(), method="GET"))


def test_close_before_accept_is_403() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1000})

    async def scenario() -> None:
        records: list[AccessRecord] = []
        context = ServerContext(app=app, access_log=records.append)
        peer = Peer(app, context=context)
        assert await peer.open() is None
        assert peer.rejection is not None
        assert peer.rejection.status_code == 403
        assert (b"content-length", b"0") in peer.rejection.headers
        await peer.closed()
        assert [record.status for record in records] == [403]

    run(scenario())


def test_denial_response_extension() -> None:
    tasks: list[asyncio.Task[Any] | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        tasks.append(asyncio.current_task())
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        headers = [(b"www-authenticate", b'Basic realm="x"'), (b"content-type", b"text/plain")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"not ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"you"})
        with pytest.raises(ClientDisconnected):  # ClientDisconnected: the answer is given, there is no WebSocket
            await send({"type": "websocket.send", "text": "late"})

    async def scenario() -> None:
        peer = Peer(app)
        assert await peer.open() is None
        assert peer.rejection is not None
        assert peer.rejection.status_code == 401
        assert (b"www-authenticate", b'Basic realm="x"') in peer.rejection.headers
        assert peer.rejection_body == b"not you"
        await peer.closed()
        assert tasks[0] is not None
        await tasks[0]  # the app's own assertions, the last one after the answer

    run(scenario())


def test_denial_in_one_piece_has_a_content_length() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no such room"})

    async def scenario() -> None:
        peer = Peer(app)
        await peer.open()
        assert peer.rejection is not None
        assert peer.rejection.status_code == 404
        assert (b"content-length", b"12") in peer.rejection.headers
        assert peer.rejection_body == b"no such room"

    run(scenario())


@pytest.mark.parametrize("how", ["raises", "returns", "bad-accept-header", "control-in-header-value"])
def test_app_failure_before_accept_is_500(how: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if how == "raises":
            raise RuntimeError("boom")
        if how == "bad-accept-header":
            await send({"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"x")]})
        if how == "control-in-header-value":
            # Any control but HTAB is refused, as on every protocol (asgi_core.has_control_character).
            await send({"type": "websocket.accept", "headers": [(b"x-note", b"a\x01b")]})

    async def scenario() -> None:
        peer = Peer(app)
        assert await peer.open() is None
        assert peer.rejection is not None
        assert peer.rejection.status_code == 500
        assert peer.rejection_body == b"Internal Server Error"

    run(scenario())


def test_frames_sent_before_the_answer_wait_for_it() -> None:
    early = Connection(ConnectionType.CLIENT).send(TextMessage(data="early bird"))

    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app, leftover=early)
        assert peer.request.leftover == early
        await peer.open()
        await until(lambda: len(app.received) == 2)
        assert app.received[1] == {"type": "websocket.receive", "text": "early bird"}
        peer.protocol.connection_lost(None)

    run(scenario())


def test_access_log_records_the_session_when_it_ends() -> None:
    async def scenario() -> None:
        records: list[AccessRecord] = []
        done: list[int] = []
        app = Recorder()
        context = ServerContext(app=app, access_log=records.append, on_request_done=lambda: done.append(1))
        peer = Peer(app, context=context, target="/live?q=1")
        await peer.open()
        await until(lambda: bool(done))  # counted as served once accepted...
        await asyncio.sleep(0.05)
        assert records == []  # ...and logged only when it ends, with its whole duration and close code
        peer.protocol.connection_lost(None)
        (record,) = records
        assert (record.method, record.path, record.query_string, record.status) == ("GET", "/live", b"q=1", 101)
        assert record.close_code == 1006  # the connection went without a close frame
        assert record.duration >= 0.05
        assert done == [1]

    run(scenario())


# ---- HTTP/2 extended CONNECT (RFC 8441) ------------------------------------------------------------------


def test_h2_accept_is_a_200_head_without_accept_token() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["http_version"] == "2"
        assert scope["scheme"] == "wss"
        assert scope["subprotocols"] == ["chat"]
        assert all(not name.startswith(b":") for name, _ in scope["headers"])
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "chat"})
        message = await receive()
        await send({"type": "websocket.send", "text": "h2: " + message["text"]})
        assert (await receive())["type"] == "websocket.disconnect"

    async def scenario() -> None:
        request = h2_request(
            b"/ws",
            [
                (b"sec-websocket-version", b"13"),
                (b"sec-websocket-protocol", b"chat"),
                (b":protocol", b"websocket"),
            ],
        )
        peer = Peer(app, request=request)
        await peer.open()
        stream = peer.transport
        assert isinstance(stream, MemoryStream)
        assert stream.head is not None
        status, headers = stream.head
        assert status == 200
        names = {name for name, _ in headers}
        assert not names & {b"sec-websocket-accept", b"upgrade", b"connection"}
        assert (b"sec-websocket-protocol", b"chat") in headers
        peer.send(TextMessage(data="hello"))
        event = await peer.next_event()
        assert isinstance(event, TextMessage)
        assert event.data == "h2: hello"
        peer.send(CloseConnection(code=1000))
        reply = await peer.next_event()
        assert isinstance(reply, CloseConnection)
        assert reply.code == 1000
        await peer.closed()  # close() on a stream transport ends the stream

    run(scenario())


def test_h2_deflate_is_negotiated_too() -> None:
    async def scenario() -> None:
        request = h2_request(
            headers=[
                (b"sec-websocket-version", b"13"),
                (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
            ]
        )
        peer = Peer(Recorder(echo), request=request)
        await peer.open()
        assert isinstance(peer.transport, MemoryStream)
        assert peer.transport.head is not None
        assert (b"sec-websocket-extensions", b"permessage-deflate") in peer.transport.head[1]
        peer.send(TextMessage(data="squeeze " * 100))
        event = await peer.next_event()
        assert isinstance(event, TextMessage)
        assert event.data == "squeeze " * 100
        peer.protocol.connection_lost(None)

    run(scenario())


@pytest.mark.parametrize("how", ["close", "denial"])
def test_h2_refusals_are_heads_on_the_stream(how: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if how == "close":
            await send({"type": "websocket.close"})
        else:
            await send(
                {"type": "websocket.http.response.start", "status": 429, "headers": [(b"retry-after", b"5")]}
            )
            await send({"type": "websocket.http.response.body", "body": b"slow down", "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b"!"})

    async def scenario() -> None:
        peer = Peer(app, request=h2_request())
        await peer.open()
        stream = peer.transport
        assert isinstance(stream, MemoryStream)
        assert stream.head is not None
        status, headers = stream.head
        names = {name for name, _ in headers}
        assert not names & {b"connection", b"transfer-encoding"}  # forbidden in HTTP/2
        if how == "close":
            assert status == 403
            assert peer.rejection_body == b""
        else:
            assert status == 429
            assert (b"retry-after", b"5") in headers
            assert peer.rejection_body == b"slow down!"
        assert stream.closed

    run(scenario())


def test_h2_unsupported_version_is_426() -> None:
    async def scenario() -> None:
        peer = Peer(never_called, request=h2_request(headers=[(b"sec-websocket-version", b"7")]))
        await peer.open()
        assert isinstance(peer.transport, MemoryStream)
        assert peer.transport.head is not None
        status, headers = peer.transport.head
        assert status == 426
        assert (b"sec-websocket-version", b"13") in headers
        assert peer.transport.closed

    run(scenario())
