"""Peers that stop taking what we send: the send deadline (`H2Limits.send_timeout`).

A stream whose response waits on a flow-control window the peer never opens makes no progress; neither does a
connection whose peer stops reading the socket. Memory stays bounded either way (one app message per stream
beyond the high-water mark), but without a deadline the streams, their apps and the connection would be held
forever. A stream that moves, however slowly, is left alone."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from asgi_core import ASGIApp, ClientDisconnected, Config, Receive, Registry, Scope, Send, ServerContext
from asgi_h2 import H2Limits, H2Protocol
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, run

MESSAGE = 64 * 1024
BIG = 10 * 1024 * 1024
TIMEOUT = 0.3


def big_response(outcomes: list[str], size: int = BIG) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(size // MESSAGE):
                await send({"type": "http.response.body", "body": b"x" * MESSAGE, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except ClientDisconnected:
            outcomes.append("disconnected")
            return
        outcomes.append("complete")

    return app


def test_limits_of_its_own_keep_the_servers_send_timeout() -> None:
    """`H2Limits` given for other reasons (here, a lower reset budget) leaves the send deadline to `Config`."""
    outcomes: list[str] = []

    async def main() -> None:
        limits = H2Limits(max_resets=50)
        peer = H2Peer(big_response(outcomes), config=Config(send_timeout=TIMEOUT), limits=limits, auto_ack=False)
        stream = peer.request()
        await peer.until(lambda: peer.streams[stream].reset is not None, timeout=3)
        assert peer.streams[stream].reset == ErrorCodes.CANCEL
        await peer.until(lambda: outcomes == ["disconnected"])

    run(main())


def test_streams_held_at_a_zero_window_are_reset_after_the_send_timeout() -> None:
    outcomes: list[str] = []

    async def main() -> None:
        peer = H2Peer(big_response(outcomes), limits=H2Limits(send_timeout=TIMEOUT), auto_ack=False)
        streams = [peer.request() for _ in range(100)]
        started = asyncio.get_running_loop().time()
        await peer.settle(50)
        # The windows are spent and never opened again: each stream holds at most the high-water mark plus one
        # message of its app, and nothing is reset yet.
        held = [stream.buffered for stream in peer.protocol.streams.values()]
        assert len(held) == 100
        assert max(held) <= peer.context.config.write_buffer_high_water + MESSAGE
        assert all(peer.streams[s].reset is None for s in streams)
        await peer.until(lambda: all(peer.streams[s].reset is not None for s in streams), timeout=3)
        elapsed = asyncio.get_running_loop().time() - started
        assert elapsed >= TIMEOUT
        assert {peer.streams[s].reset for s in streams} == {ErrorCodes.CANCEL}
        await peer.until(lambda: len(outcomes) == 100)
        assert outcomes == ["disconnected"] * 100
        assert not peer.protocol.streams
        # Only the streams were stuck: the connection goes on once the peer opens its window again.
        assert peer.goaway is None
        peer.client.increment_flow_control_window(BIG)
        peer.auto_ack = True
        small = peer.request("GET", "/again")
        peer.flush()
        outcomes.clear()
        peer.protocol.context.app = big_response(outcomes, MESSAGE)
        result = await peer.response(small)
        assert (result.status, len(result.data), result.reset) == (200, MESSAGE, None)

    run(main())


def test_a_stream_that_moves_slowly_is_not_reset() -> None:
    outcomes: list[str] = []
    size = 512 * 1024

    async def main() -> None:
        peer = H2Peer(big_response(outcomes, size), limits=H2Limits(send_timeout=TIMEOUT), auto_ack=False)
        stream = peer.request()
        result = peer.streams[stream]
        # 16 KiB of window every 0.1 s: the response takes longer than the timeout many times over, but it moves.
        for _ in range(12):
            await peer.settle()
            peer.client.acknowledge_received_data(16 * 1024, stream)
            peer.flush()
            await asyncio.sleep(0.1)
        await peer.settle()
        assert result.reset is None
        assert 65535 + 11 * 16 * 1024 <= len(result.data) < size
        peer.auto_ack = True
        peer.client.acknowledge_received_data(len(result.data), stream)
        peer.flush()
        await peer.response(stream)
        assert (len(result.data), outcomes) == (size, ["complete"])

    run(main())


def test_a_connection_whose_writes_stay_blocked_is_aborted() -> None:
    outcomes: list[str] = []

    async def main() -> None:
        peer = H2Peer(big_response(outcomes), limits=H2Limits(send_timeout=TIMEOUT))
        stream = peer.request()
        await peer.until(lambda: len(peer.streams[stream].data) > 100_000)
        peer.protocol.pause_writing()  # the socket's buffer is full: the peer stopped reading it
        await asyncio.sleep(TIMEOUT / 2)
        peer.protocol.resume_writing()  # it read a little: progress, the deadline starts again
        peer.protocol.pause_writing()
        await asyncio.sleep(TIMEOUT * 0.75)
        assert not peer.transport.closed
        await peer.until(lambda: peer.transport.closed, timeout=2)
        assert peer.transport.aborted  # close() would wait for a buffer the peer never reads
        await peer.until(lambda: outcomes == ["disconnected"])

    run(main())


def test_a_connection_closed_while_its_peer_reads_nothing_is_aborted_after_the_send_timeout() -> None:
    """A close waits for the write buffer to drain, which a peer that reads nothing never lets happen."""
    outcomes: list[str] = []

    async def main() -> None:
        peer = H2Peer(big_response(outcomes), limits=H2Limits(send_timeout=TIMEOUT))
        stream = peer.request()
        await peer.until(lambda: len(peer.streams[stream].data) > 100_000)
        peer.transport.unread = True
        peer.protocol.pause_writing()
        peer.protocol.going_away()  # the drain is over: close
        assert peer.transport.closed
        assert not peer.transport.aborted
        await asyncio.sleep(TIMEOUT * 1.5)
        assert peer.transport.aborted
        await peer.until(lambda: outcomes == ["disconnected"] and not peer.context.connections)

    run(main())


def test_a_client_that_never_reads_the_socket_is_cut_off() -> None:
    """On a real socket: a client that asks for 10 MiB with wide-open windows and never reads a byte."""
    outcomes: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        context = ServerContext(app=big_response(outcomes), config=Config(), registry=Registry(discover=False))
        server = await loop.create_server(
            lambda: H2Protocol(context, limits=H2Limits(send_timeout=TIMEOUT)), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        client.local_settings.update({SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        client.local_settings.acknowledge()  # in force from the first SETTINGS frame
        client.initiate_connection()
        client.increment_flow_control_window(2**31 - 1 - 65535)
        stream = client.get_next_available_stream_id()
        client.send_headers(
            stream, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")], end_stream=True
        )
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, client.data_to_send())
        try:
            deadline = loop.time() + 5
            while outcomes != ["disconnected"] or context.connections:
                assert loop.time() < deadline, "the server kept the connection"
                await asyncio.sleep(0.01)
            # The connection ended (the stream alone was not stuck), and what the server still held for it was
            # dropped: what the kernel had taken is all that arrives, far from the 10 MiB asked for.
            received = 0
            while data := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 2):
                received += len(data)
            assert 0 < received < BIG // 2
        finally:
            sock.close()
            server.close()
            await server.wait_closed()

    run(main())


def test_no_new_request_is_read_while_the_write_buffer_is_full() -> None:
    """The slow-reader rule: above the write high-water mark a connection reads nothing more (no new streams,
    no PINGs to answer), so a peer that does not read cannot make us take on more work or queue more replies.
    Reading resumes once it has read what was queued."""
    started: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.append(scope["path"])
        size = BIG if scope["path"] == "/big" else 10
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for offset in range(0, size, MESSAGE):
            body = b"x" * min(MESSAGE, size - offset)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        context = ServerContext(app=app, config=Config(), registry=Registry(discover=False))
        server = await loop.create_server(lambda: H2Protocol(context), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        client.local_settings.update({SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        client.local_settings.acknowledge()
        client.initiate_connection()
        client.increment_flow_control_window(2**31 - 1 - 65535)

        def get(path: str) -> bytes:
            stream = client.get_next_available_stream_id()
            head = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")]
            client.send_headers(stream, head, end_stream=True)
            return client.data_to_send()

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, client.data_to_send() + get("/big"))
            await asyncio.sleep(0.3)  # the response fills the socket buffers and our transport's
            assert started == ["/big"]
            await loop.sock_sendall(sock, b"".join(get(f"/small{i}") for i in range(20)))
            await asyncio.sleep(0.3)
            assert started == ["/big"]  # not read, so not started
            # The client reads everything: the transport drains, reading resumes, the small requests are served.
            received = 0
            while len(started) < 21:
                received += len(await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 2))
            assert received > 0
        finally:
            sock.close()
            server.close()
            await server.wait_closed()

    run(main())


def test_the_send_timeout_is_a_setting() -> None:
    async def build() -> list[float]:
        context = ServerContext(app=big_response([]), config=Config(send_timeout=0.25))
        return [
            H2Protocol(context).send_timeout,
            H2Protocol(context, limits=H2Limits(max_resets=5)).send_timeout,
            H2Protocol(context, limits=H2Limits(send_timeout=1.5)).send_timeout,  # the connection's own wins
        ]

    assert asyncio.run(build()) == [0.25, 0.25, 1.5]
