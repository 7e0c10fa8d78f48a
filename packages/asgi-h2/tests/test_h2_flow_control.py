"""Flow control both ways (RFC 9113 section 5.2) and the SETTINGS we advertise.

Responses: never more than the peer's windows, the app held back (bounded memory) while they are closed,
resumed by WINDOW_UPDATE. Requests: credit goes back to the client only as the app reads, so a slow app slows
its client, and one slow stream does not stall the others."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext, UpgradeRequest
from h2 import events as ev
from h2.settings import SettingCodes

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, run

CHUNK = 16 * 1024


def test_response_waits_for_window_updates_with_bounded_buffering() -> None:
    sent_chunks = 0
    total_chunks = 200

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent_chunks
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(total_chunks):
            await send({"type": "http.response.body", "body": b"z" * CHUNK, "more_body": True})
            sent_chunks += 1
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        peer = H2Peer(app, auto_ack=False)
        stream = peer.request()
        await peer.settle(50)
        result = peer.streams[stream]
        # Exactly the peer's initial windows' worth arrived, and the app is held back.
        assert len(result.data) == 65535
        assert not result.ended
        held = peer.protocol.streams[stream].buffered
        assert held <= peer.context.config.write_buffer_high_water + CHUNK
        assert sent_chunks * CHUNK <= 65535 + held
        assert sent_chunks < 10
        # The client consumes: credit flows back, the rest follows.
        peer.auto_ack = True
        peer.client.acknowledge_received_data(len(result.data), stream)
        peer.flush()
        await peer.response(stream, timeout=5)
        assert len(result.data) == total_chunks * CHUNK

    run(main())


def test_peer_window_and_frame_size_settings_are_respected() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"q" * 50_000})

    async def main() -> None:
        peer = H2Peer(app, client_settings={SettingCodes.INITIAL_WINDOW_SIZE: 1000})
        stream = peer.request()
        result = await peer.response(stream)
        assert len(result.data) == 50_000
        sizes = [len(e.data) for e in peer.events if isinstance(e, ev.DataReceived)]
        assert max(sizes) <= 1000  # the client's 1000-byte stream window cut every frame

    run(main())


def test_request_body_credit_follows_the_app() -> None:
    release = asyncio.Event()
    received: list[int] = []

    async def slow_reader(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        while True:
            message = await receive()
            received.append(len(message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(sum(received)).encode()})

    async def main() -> None:
        peer = H2Peer(slow_reader)
        stream = peer.request("POST", "/", end=False)
        await peer.settle()
        body_size = 300_000
        sent = 0
        # The client sends as far as its windows allow; with the app not reading, they do not reopen.
        while sent < body_size:
            window = min(peer.client.local_flow_control_window(stream), peer.client.max_outbound_frame_size)
            if window == 0:
                await peer.settle()
                if peer.client.local_flow_control_window(stream) == 0:
                    break
                continue
            size = min(window, body_size - sent)
            peer.client.send_data(stream, b"b" * size)
            sent += size
            peer.flush()
            peer.receive()
        assert sent == 65535  # one stream window and no more: nothing was acknowledged
        release.set()
        while sent < body_size:
            await peer.settle()
            window = min(peer.client.local_flow_control_window(stream), peer.client.max_outbound_frame_size)
            size = min(window, body_size - sent)
            if size:
                peer.client.send_data(stream, b"b" * size, end_stream=sent + size == body_size)
                sent += size
                peer.flush()
        result = await peer.response(stream)
        assert bytes(result.data) == str(body_size).encode()

    run(main())


def test_a_stalled_upload_does_not_block_other_streams() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/stalled":
            await asyncio.sleep(30)  # never reads its body
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    async def main() -> None:
        peer = H2Peer(app)
        stalled = peer.request("POST", "/stalled", end=False)
        peer.client.send_data(stalled, b"s" * 16384)
        for _ in range(3):
            peer.client.send_data(stalled, b"s" * 16383)
        peer.flush()
        other = peer.request("POST", "/other", end=False)
        sent = 0
        while sent < 150_000:
            window = min(peer.client.local_flow_control_window(other), peer.client.max_outbound_frame_size)
            assert window > 0, "the connection window ran dry behind the stalled stream"
            size = min(window, 150_000 - sent)
            peer.client.send_data(other, b"o" * size, end_stream=sent + size == 150_000)
            sent += size
            peer.flush()
            await peer.settle(3)
        result = await peer.response(other)
        assert bytes(result.data) == b"150000"

    run(main())


def test_advertised_settings_come_from_config() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request in this test")

    async def main() -> None:
        config = Config(
            http2_max_concurrent_streams=7,
            http2_initial_window_size=1_000_000,
            http2_max_frame_size=32768,
            http2_max_header_list_size=8192,
        )
        peer = H2Peer(app, config=config)
        peer.receive()
        remote = peer.client.remote_settings
        assert remote.max_concurrent_streams == 7
        assert remote.initial_window_size == 1_000_000
        assert remote.max_frame_size == 32768
        assert remote.max_header_list_size == 8192
        assert remote.enable_connect_protocol == 0  # no WebSocket handler in this registry
        # The connection window was opened to match: four stream windows.
        assert peer.client.local_flow_control_window(peer.request("POST", end=False)) == 1_000_000
        assert peer.client.outbound_flow_control_window == 4_000_000

    run(main())


def test_a_window_smaller_than_the_default_applies_on_acknowledgement() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    async def main() -> None:
        peer = H2Peer(app, config=Config(http2_initial_window_size=4096))
        peer.receive()  # our two SETTINGS frames reach the client, which acknowledges both
        assert peer.client.remote_settings.initial_window_size == 4096
        stream = peer.request("POST", end=False)
        assert peer.client.local_flow_control_window(stream) == 4096
        peer.client.send_data(stream, b"x" * 4096)
        peer.flush()
        await peer.settle()
        assert peer.goaway is None  # within the window the server now enforces

    run(main())


def test_connect_protocol_is_advertised_when_a_websocket_handler_exists() -> None:
    class Handler:
        token = "websocket"

        def accepts(self, request: UpgradeRequest) -> bool:
            return True

        def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
            return asyncio.Protocol()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request in this test")

    async def main() -> None:
        registry = Registry(discover=False)
        registry.add_upgrade(Handler())
        peer = H2Peer(app, registry=registry)
        peer.receive()
        assert peer.client.remote_settings.enable_connect_protocol == 1

    run(main())
