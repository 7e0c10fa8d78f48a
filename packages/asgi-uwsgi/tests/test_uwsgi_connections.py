"""uWSGI connections on real loopback sockets: broken packets, timeouts, backpressure, disconnects, the
allow-list, Unix sockets and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
import threading
from pathlib import Path

import asgi_core
import pytest
from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext, serve
from asgi_uwsgi import PLUGIN, UwsgiProtocol, encode_packet

# The shared client module sits beside this file; pytest imports tests by path (--import-mode=importlib)
# without putting their directory on sys.path, and a second conftest.py would clash under mypy.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from uwsgi_client import (
    LOG,
    SCENARIO_TIMEOUT,
    Response,
    closed_without_reply,
    connect,
    echo_app,
    exchange,
    nginx_vars,
    packet,
    parse_response,
    read_body,
    read_to_close,
    run,
)

# ---- broken packets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "eof", "logged"),
    [
        (b"\x00\x08\x00\x00\x09\x00abcdef", False, "name of 9 bytes runs past the end of the variables block"),
        (encode_packet([(b"REQUEST_METHOD", b"GET"), (b"CONTENT_LENGTH", b"-3")]), False, "not a byte count"),
        (b"\x00\x01", True, "connection closed after 2 of the 4 header bytes"),
        (b"\x00\x40\x00\x00\x01\x00", True, "closed after 2 of 64 variables bytes"),
    ],
)
def test_malformed_packets_close_cleanly_and_are_logged(
    data: bytes, eof: bool, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(port: int) -> tuple[bytes, Response]:
        raw = await closed_without_reply(port, data, eof=eof)
        # the server is unharmed: the next client is served
        return raw, await exchange(port, packet())

    with caplog.at_level(logging.WARNING, LOG):
        raw, after = run(echo_app, scenario)
    assert raw == b""
    assert after.status == 200
    assert "uWSGI connection from 127.0.0.1:" in caplog.text
    assert logged in caplog.text


def test_vars_block_over_the_limit_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    def factory(context: ServerContext) -> asyncio.Protocol:
        return UwsgiProtocol(context, max_vars_size=512)

    async def scenario(port: int) -> tuple[bytes, Response]:
        big = encode_packet([(b"REQUEST_METHOD", b"GET"), (b"HTTP_X", b"v" * 600)])
        return await closed_without_reply(port, big), await exchange(port, packet())

    with caplog.at_level(logging.WARNING, LOG):
        raw, after = run(echo_app, scenario, protocol_factory=factory)
    assert raw == b""
    assert after.status == 200
    assert "over the limit of 512 bytes" in caplog.text


def test_slow_packet_is_closed_at_the_header_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(port: int) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        raw = await closed_without_reply(port, packet()[:10])
        return raw, loop.time() - started

    with caplog.at_level(logging.WARNING, LOG):
        raw, elapsed = run(echo_app, scenario, config=Config(lifespan="off", header_timeout=0.3))
    assert raw == b""
    assert 0.25 < elapsed < 5
    assert "no complete request packet within header_timeout (0.3 s)" in caplog.text


def test_fuzzed_garbage_never_kills_the_server() -> None:
    import random

    rng = random.Random(1234)
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) for _ in range(40)]

    async def scenario(port: int) -> Response:
        for sample in samples:
            _, writer = await connect(port)
            writer.write(sample)
            writer.write_eof()
            writer.close()
        return await exchange(port, packet())

    assert run(echo_app, scenario, config=Config(lifespan="off", header_timeout=1)).status == 200


# ---- flow control and disconnects --------------------------------------------------------------------


def test_request_body_backpressure_stops_reading_until_the_app_reads() -> None:
    total = 16 * 1024 * 1024  # about 4 MiB fit in the kernel's socket buffers on loopback
    release = asyncio.Event()
    received = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal received
        await release.wait()
        body, _ = await read_body(receive)
        received = len(body)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"%d" % len(body)})

    async def scenario(port: int) -> tuple[int, Response]:
        reader, writer = await connect(port)
        writer.write(encode_packet(nginx_vars("POST", content_length=total)))
        chunk = b"y" * 65536
        sent = 0
        while sent < total:
            writer.write(chunk)
            sent += len(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 0.5)
            except asyncio.TimeoutError:
                break  # the server stopped reading: backpressure reached the client
        accepted = sent
        release.set()
        while sent < total:
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
        response = parse_response(await read_to_close(reader))
        writer.close()
        return accepted, response

    accepted, response = run(app, scenario)
    assert accepted < total // 2, f"{accepted} bytes accepted while the app read nothing"
    assert response.body == b"%d" % total
    assert received == total


def test_app_hears_disconnect_when_nginx_drops_the_request() -> None:
    heard = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        message = await receive()  # blocks until the peer goes away
        assert message == {"type": "http.disconnect"}
        heard.set()

    async def scenario(port: int) -> bool:
        _, writer = await connect(port)
        writer.write(packet("POST", body=b"data"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # what nginx does when its client goes away
        await asyncio.wait_for(heard.wait(), 5)
        return heard.is_set()

    assert run(app, scenario)


def test_disconnect_during_the_body_ends_the_request() -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            outcome.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                return

    async def scenario(port: int) -> None:
        _, writer = await connect(port)
        writer.write(packet("POST", body=b"x" * 1000)[:-500])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        for _ in range(100):
            if outcome and outcome[-1] == "http.disconnect":
                return
            await asyncio.sleep(0.02)

    run(app, scenario)
    assert outcome[-1] == "http.disconnect"
    assert "http.request" in outcome


# ---- allow-list, unix sockets, shutdown --------------------------------------------------------------


def test_nginx_has_the_end_of_the_response_while_the_app_still_runs() -> None:
    """A uWSGI response ends with its connection: nginx has it all as soon as the response is complete, not
    when the app returns (work after the response, such as a background task) nor at the loop's next turn."""
    release = threading.Event()

    async def work_after_the_response(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        release.wait(SCENARIO_TIMEOUT)  # holds the server's loop: what has not left by now leaves after the test

    def nginx(port: int) -> tuple[bytes, bool]:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(packet())
                received, chunk = b"", b"?"
                with contextlib.suppress(TimeoutError):
                    while chunk := sock.recv(65536):
                        received += chunk
                return received, chunk == b""
        finally:
            release.set()

    async def scenario(port: int) -> tuple[bytes, bool]:
        return await asyncio.to_thread(nginx, port)

    received, finished = run(work_after_the_response, scenario)
    response = parse_response(received)
    assert (response.status, response.body) == (200, b"done")
    assert finished, "no end of the connection while the app was still running"


def test_peer_outside_the_allow_list_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    called = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    async def scenario(port: int) -> bytes:
        return await closed_without_reply(port, packet())

    with caplog.at_level(logging.WARNING, LOG):
        raw = run(app, scenario, config=Config(lifespan="off", uwsgi_allow_ips=("10.0.0.0/8", "192.168.1.1")))
    assert raw == b""
    assert not called
    assert "refused: not in uwsgi_allow_ips 10.0.0.0/8, 192.168.1.1" in caplog.text


@pytest.mark.parametrize("allowed", [("127.0.0.0/8",), ("10.0.0.0/8", "127.0.0.1/32"), ("*",)])
def test_cidr_ranges_really_match(allowed: tuple[str, ...]) -> None:
    async def scenario(port: int) -> Response:
        return await exchange(port, packet())

    assert run(echo_app, scenario, config=Config(lifespan="off", uwsgi_allow_ips=allowed)).status == 200


def test_unix_socket_peers_are_always_allowed(tmp_path: Path) -> None:
    path = str(tmp_path / "uwsgi.sock")
    context = ServerContext(app=echo_app, config=Config(lifespan="off", uwsgi_allow_ips=("10.0.0.0/8",)))

    async def main() -> Response:
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(lambda: PLUGIN.create_protocol(context), path)
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(packet("POST", "/unix", body=b"hi"))
            raw = await read_to_close(reader)
            writer.close()
            return parse_response(raw)
        finally:
            server.close()
            await server.wait_closed()

    info = asyncio.run(asyncio.wait_for(main(), SCENARIO_TIMEOUT)).json()
    assert info["path"] == "/unix"
    assert info["size"] == 2
    assert info["client"] == ["192.0.2.7", 40123]  # REMOTE_ADDR, not the socket's (empty) peer name


def test_shutdown_closes_idle_connections_and_lets_requests_finish() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"finished"})

    async def main() -> tuple[bytes, Response]:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[asgi_core.Server] = loop.create_future()
        stop = asyncio.Event()
        config = Config(lifespan="off", drain_idle_grace=0.2)  # the idle connection closes once it passes
        task = loop.create_task(
            serve(app, PLUGIN.create_protocol, port=0, config=config, stop=stop, ready=ready.set_result)
        )
        port = (await ready).sockets[0].getsockname()[1]
        idle_reader, idle_writer = await connect(port)
        busy_reader, busy_writer = await connect(port)
        busy_writer.write(packet())
        await asyncio.sleep(0.1)
        stop.set()
        idle = await read_to_close(idle_reader)
        busy = parse_response(await read_to_close(busy_reader))
        idle_writer.close()
        busy_writer.close()
        await asyncio.wait_for(task, 10)
        return idle, busy

    idle, busy = asyncio.run(asyncio.wait_for(main(), SCENARIO_TIMEOUT))
    assert idle == b""
    assert busy.body == b"finished"


def test_plugin_is_found_by_name_through_the_registry() -> None:
    assert Registry().protocol("uwsgi") is PLUGIN
    assert PLUGIN.name == "uwsgi"
    assert PLUGIN.alpn == ()


def test_connections_are_registered_for_graceful_shutdown() -> None:
    context = ServerContext(app=echo_app, config=Config(lifespan="off", drain_idle_grace=0))

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: PLUGIN.create_protocol(context), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = socket.create_connection(("127.0.0.1", port))
        try:
            for _ in range(100):
                if context.connections:
                    break
                await asyncio.sleep(0.01)
            during = len(context.connections)
            context.drain_connections()
            for _ in range(100):
                if not context.connections:
                    break
                await asyncio.sleep(0.01)
            return during, len(context.connections)
        finally:
            sock.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(asyncio.wait_for(main(), SCENARIO_TIMEOUT)) == (1, 0)


def test_header_layout_matches_what_nginx_sends() -> None:
    # Guard against an encoder and parser agreeing on a wrong layout: bytes as nginx's module writes them.
    data = encode_packet([(b"REQUEST_METHOD", b"GET")])
    assert data == struct.pack("<BHB", 0, 21, 0) + b"\x0e\x00REQUEST_METHOD\x03\x00GET"


# ---- modifier1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("modifier1", [5, 100, 255])
def test_packet_with_an_unserved_modifier1_is_refused_and_the_next_client_served(
    modifier1: int, caplog: pytest.LogCaptureFixture
) -> None:
    called = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope["path"])
        await echo_app(scope, receive, send)

    async def scenario(port: int) -> tuple[bytes, Response]:
        refused = encode_packet(nginx_vars("POST", "/refused", body=b"abc"), b"abc", modifier1=modifier1)
        return await closed_without_reply(port, refused), await exchange(port, packet("GET", "/next"))

    with caplog.at_level(logging.WARNING, LOG):
        raw, after = run(app, scenario)
    assert raw == b""
    assert called == ["/next"]
    assert after.status == 200
    assert f"modifier1 {modifier1} is not served (this server serves 0, 30)" in caplog.text
    assert "uwsgi_modifier1" in caplog.text


def test_modifier1_30_is_served_with_script_name_in_path_info() -> None:
    # uwsgi_modifier1 30: PATH_INFO still holds SCRIPT_NAME, for the server to strip; the scope's path keeps it
    variables = nginx_vars("GET", "/app/x", extra=[("SCRIPT_NAME", "/app")])

    async def scenario(port: int) -> Response:
        return await exchange(port, encode_packet(variables, modifier1=30))

    info = run(echo_app, scenario).json()
    assert (info["root_path"], info["path"], info["raw_path"]) == ("/app", "/app/x", "/app/x")
