"""Closing, as RFC 6455 section 7 and the ASGI spec have it: codes and reasons both ways, protocol failures,
timeouts, graceful shutdown (1001, 1012 on restart) and apps that do not notice."""

from __future__ import annotations

import asyncio

import pytest
from asgi_core import ClientDisconnected, Config, Receive, Scope, Send, ServerContext
from asgi_wsproto import _protocol
from ws_peer import Peer, Recorder, echo, run, until
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage


def test_client_close_code_and_reason_reach_the_app() -> None:
    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app)
        await peer.open()
        peer.send(CloseConnection(code=4001, reason="done here"))
        echo = await peer.next_event()
        assert isinstance(echo, CloseConnection)
        assert (echo.code, echo.reason) == (4001, "done here")
        await peer.closed()  # the server closes the TCP connection first (RFC 6455 7.1.1)
        assert not peer.transport.aborted
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[-1] == {"type": "websocket.disconnect", "code": 4001, "reason": "done here"}

    run(scenario())


def test_client_close_without_code_is_1005() -> None:
    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app)
        await peer.open()
        peer.send_raw(b"\x88\x80\x00\x00\x00\x00")  # a close frame with an empty payload
        await peer.closed()
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[-1]["code"] == 1005

    run(scenario())


def test_app_close_code_and_reason_reach_the_client() -> None:
    disconnects: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4002, "reason": "room closed"})
        disconnects.append(await receive())

    async def scenario() -> None:
        peer = Peer(app)
        await peer.open()
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert (close.code, close.reason) == (4002, "room closed")
        # Still in flight from the client when the close arrived: dropped, the app has closed.
        peer.send_raw(Connection(ConnectionType.CLIENT).send(TextMessage(data="sent while closing")))
        peer.send(close.response())
        await peer.closed()
        await until(lambda: bool(disconnects))
        assert disconnects == [{"type": "websocket.disconnect", "code": 4002, "reason": "room closed"}]

    run(scenario())


def test_lost_connection_is_1006() -> None:
    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app)
        await peer.open()
        assert peer.protocol.eof_received() is False  # a FIN without a close frame: we close too
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[-1] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        assert peer.protocol not in peer.context.connections

    run(scenario())


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x81\x05hello", 1002),  # unmasked client frame
        (b"\x83\x80\x00\x00\x00\x00", 1002),  # reserved opcode
        (b"\xc1\x80\x00\x00\x00\x00", 1002),  # RSV1 without a negotiated extension
        (b"\x89\xfe\x00\x7e" + b"\x00" * 4 + b"x" * 126, 1002),  # control frame over 125 bytes
        (b"\x80\x80\x00\x00\x00\x00", 1002),  # continuation with no message
        (b"\x81\x82\x00\x00\x00\x00\xc3\x28", 1007),  # invalid UTF-8 in text
        (b"\x88\x82\x00\x00\x00\x00\x03\xed", 1002),  # close with reserved code 1005
        (b"\x82\xfe\x00\x05\x00\x00\x00\x00hello", 1002),  # a 16-bit length where 7 bits would do
    ],
    ids=["unmasked", "opcode", "rsv1", "big-control", "continuation", "utf8", "close-1005", "long-length-form"],
)
def test_protocol_errors_fail_the_connection(raw: bytes, code: int) -> None:
    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app)
        await peer.open()
        peer.send_raw(raw)
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == code
        # Half-closed so the peer reads the close frame before the connection goes; then closed.
        assert peer.transport.eof_written
        peer.protocol.eof_received()
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[-1]["type"] == "websocket.disconnect"
        assert app.received[-1]["code"] == code

    run(scenario())


def test_protocol_error_is_seen_whether_fed_whole_or_byte_by_byte() -> None:
    frames = Connection(ConnectionType.CLIENT).send(TextMessage(data="ok")) + b"\x81\x82\x00\x00\x00\x00\xc3\x28"

    async def scenario(chunk: int | None) -> list[object]:
        app = Recorder()
        peer = Peer(app)
        await peer.open()
        peer.send_raw(frames, chunk=chunk)
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(app.done.wait(), 2)
        return [*app.received, close.code]

    results: list[list[object]] = []

    async def both() -> None:
        results.append(await scenario(None))
        results.append(await scenario(1))

    run(both())
    assert results[0] == results[1]
    assert results[0][-1] == 1007
    assert {"type": "websocket.receive", "text": "ok"} in results[0]


def test_unanswered_close_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("asgi_wsproto._protocol.CLOSE_TIMEOUT", 0.05)
    disconnects: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        disconnects.append(await receive())

    async def scenario() -> None:
        peer = Peer(app)
        await peer.open()
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        await peer.closed()  # never answered: dropped
        assert peer.transport.aborted
        await until(lambda: bool(disconnects))
        assert disconnects == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]

    run(scenario())


def test_drain_step_one_leaves_open_sessions_and_handshakes_going() -> None:
    """`shutdown()` (the server stopped accepting) closes no WebSocket; a handshake still unanswered is served."""
    accept = asyncio.Event()
    app = Recorder(echo)

    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        await accept.wait()
        await app(scope, receive, send)

    async def scenario() -> None:
        context = ServerContext(app=late)
        open_peer, pending_peer = Peer(late, context=context), Peer(late, context=context)
        open_peer.start()
        pending_peer.start()
        accept.set()
        assert await open_peer.answer() is not None
        accept.clear()
        context.drain_connections()
        accept.set()
        assert await pending_peer.answer() is not None
        for peer in (open_peer, pending_peer):
            peer.send(TextMessage(data="still served"))
            assert await peer.next_event() == TextMessage(data="still served")
            assert not peer.transport.closed
        # A connection made while draining starts in step 1 too.
        late_peer = Peer(late, context=context)
        assert await late_peer.open() is not None
        late_peer.send(TextMessage(data="made while draining"))
        assert await late_peer.next_event() == TextMessage(data="made while draining")

    run(scenario())


@pytest.mark.parametrize(("restarting", "code"), [(False, 1001), (True, 1012)])
def test_going_away_closes_tells_the_app_and_hangs_up_without_the_peer(
    restarting: bool, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_protocol, "CLOSE_TIMEOUT", 0.2)

    async def scenario() -> None:
        app = Recorder()
        context = ServerContext(app=app)
        peer = Peer(app, context=context)
        await peer.open()
        context.restarting = restarting
        context.drain_connections()
        context.close_connections()
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert (close.code, close.reason) == (code, "server restarting" if restarting else "server shutting down")
        # The app hears of it at once, not when (or if) the peer answers the close.
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[-1] == {"type": "websocket.disconnect", "code": code, "reason": close.reason}
        assert not peer.transport.closed
        await peer.closed(timeout=2)  # the peer never answered: dropped after the close timeout
        await until(lambda: not context.connections)

    run(scenario())


def test_going_away_during_handshake_closes_right_after_accept() -> None:
    accept = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await accept.wait()
        await send({"type": "websocket.accept"})
        with pytest.raises(ClientDisconnected):
            await send({"type": "websocket.send", "text": "too late"})
        assert (await receive())["code"] == 1001

    async def scenario() -> None:
        context = ServerContext(app=app)
        peer = Peer(app, context=context)
        peer.start()
        await asyncio.sleep(0.01)
        context.drain_connections()
        context.close_connections()
        accept.set()
        opened = await peer.answer()
        assert opened is not None
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1001

    run(scenario())


def test_app_that_ignores_the_disconnect_is_cancelled_after_the_grace_period() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await asyncio.sleep(30)  # waiting on something else entirely
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> None:
        peer = Peer(app, config=Config(disconnect_grace_period=0.05))
        await peer.open()
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(cancelled.wait(), 2)

    run(scenario())
