"""Messages both ways with wsproto as the client: text and bytes, fragmentation, whole vs byte-at-a-time feeding,
client pings, and what the app may and may not send."""

from __future__ import annotations

import asyncio

import pytest
from asgi_core import ClientDisconnected, InvalidMessage, Message, Receive, Scope, Send
from ws_peer import Peer, Recorder, echo, run, until
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage


@pytest.mark.parametrize("chunk", [None, 1, 7], ids=["whole", "byte-at-a-time", "7-bytes"])
def test_echo_text_and_bytes(chunk: int | None) -> None:
    async def scenario() -> None:
        app = Recorder(echo)
        peer = Peer(app)
        await peer.open()
        for message in ["hello", "ünïcødé ✓", "", "x" * 70_000]:
            peer.send(TextMessage(data=message), chunk=chunk)
            event = await peer.next_event()
            assert isinstance(event, TextMessage)
            assert event.data == message
            assert event.message_finished
        for payload in [b"\x00\xff" * 10, b"", bytes(range(256)) * 300]:
            peer.send(BytesMessage(data=payload), chunk=chunk)
            event = await peer.next_event()
            assert isinstance(event, BytesMessage)
            assert event.data == payload
        received = [m for m in app.received if m["type"] == "websocket.receive"]
        assert received[0] == {"type": "websocket.receive", "text": "hello"}  # one of text/bytes, not both
        assert received[4] == {"type": "websocket.receive", "bytes": b"\x00\xff" * 10}
        peer.protocol.connection_lost(None)

    run(scenario())


def test_fragmented_messages_reach_the_app_whole() -> None:
    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app)
        await peer.open()
        peer.send(TextMessage(data="frag", message_finished=False))
        peer.send(Ping(payload=b"in between"))  # a control frame may sit between fragments
        peer.send(TextMessage(data="men", message_finished=False))
        peer.send(TextMessage(data="ted"))
        peer.send(BytesMessage(data=b"\x01", message_finished=False))
        peer.send(BytesMessage(data=b"\x02"))
        pong = await peer.next_event()
        assert isinstance(pong, Pong)
        assert pong.payload == b"in between"
        await until(lambda: len(app.received) == 3)
        assert app.received[1:] == [
            {"type": "websocket.receive", "text": "fragmented"},
            {"type": "websocket.receive", "bytes": b"\x01\x02"},
        ]
        peer.protocol.connection_lost(None)

    run(scenario())


def test_client_ping_is_answered_with_its_payload() -> None:
    async def scenario() -> None:
        peer = Peer(Recorder())
        await peer.open()
        peer.send(Ping(payload=b"are you there"), chunk=1)
        event = await peer.next_event()
        assert isinstance(event, Pong)
        assert event.payload == b"are you there"
        peer.protocol.connection_lost(None)

    run(scenario())


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.send", "text": "a", "bytes": b"b"},
        {"type": "websocket.send"},
        {"type": "websocket.send", "text": b"not str"},
        {"type": "websocket.close", "code": 1006},
        {"type": "websocket.close", "code": "1000"},
        {"type": "websocket.close", "reason": "x" * 200},
        {"type": "websocket.accept"},
        {"type": "http.response.start", "status": 200},
        {"no": "type"},
    ],
    ids=[
        "both",
        "neither",
        "text-bytes",
        "reserved-code",
        "str-code",
        "long-reason",
        "accept-twice",
        "http",
        "untyped",
    ],
)
def test_malformed_app_messages_raise_and_close_1011(message: Message) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await send(message)
        except InvalidMessage as exc:
            errors.append(exc)
            raise

    async def scenario() -> None:
        peer = Peer(app)
        await peer.open()
        event = await peer.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1011
        assert len(errors) == 1

    run(scenario())


def test_send_after_disconnect_raises_client_disconnected() -> None:
    outcome: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnect = await receive()
        outcome.append(disconnect)
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except ClientDisconnected as exc:
            outcome.append(exc)
        await send({"type": "websocket.close"})  # closing what is closed is allowed and does nothing
        outcome.append(await receive())  # and receive keeps saying so

    async def scenario() -> None:
        peer = Peer(app)
        await peer.open()
        session = peer.protocol.session  # the protocol lets go of it once the connection is lost
        assert session is not None
        peer.protocol.connection_lost(ConnectionResetError())
        assert session.task is not None
        await asyncio.wait_for(session.task, 2)
        assert outcome[0] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        assert isinstance(outcome[1], OSError)
        assert outcome[2] == outcome[0]

    run(scenario())


def test_app_returning_while_open_closes_1000() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})

    async def scenario() -> None:
        peer = Peer(app)
        await peer.open()
        text = await peer.next_event()
        assert isinstance(text, TextMessage)
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1000
        peer.send(close.response())
        await peer.closed()
        assert not peer.transport.aborted

    run(scenario())


def test_app_error_after_accept_closes_1011() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise RuntimeError("boom")

    async def scenario() -> None:
        peer = Peer(app)
        await peer.open()
        peer.send(TextMessage(data="trigger"))
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1011
        peer.send(close.response())
        await peer.closed()

    run(scenario())
