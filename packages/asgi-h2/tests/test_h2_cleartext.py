"""Cleartext HTTP/2: recognising the prior-knowledge preface, who may use h2c, and `Upgrade: h2c` served on
stream 1 (the hand-off from a real HTTP/1.1 connection is tested end to end in tests/test_h2_end_to_end.py)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from asgi_core import Config, ConnectionInfo, Receive, Registry, Scope, Send, ServerContext, UpgradeRequest
from asgi_h2 import H2C_UPGRADE, PLUGIN, PREFACE, H2Protocol, is_h2_preface, prior_knowledge_allowed
from h2 import events as ev
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import MemoryTransport, parse_frames, run

SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"


def test_preface_recognition() -> None:
    assert is_h2_preface(PREFACE) is True
    assert is_h2_preface(PREFACE + b"\x00\x00\x12\x04") is True
    assert is_h2_preface(PREFACE[:3]) is None  # a prefix: read more
    assert is_h2_preface(b"") is None
    assert is_h2_preface(b"GET / HTTP/1.1\r\n") is False
    assert is_h2_preface(b"PRI * HTTP/1.1\r\n") is False
    assert (PLUGIN.name, PLUGIN.alpn) == ("h2", ("h2",))


@pytest.mark.parametrize(
    ("mode", "client", "allowed"),
    [
        ("off", ("127.0.0.1", 1), False),
        ("upgrade", ("127.0.0.1", 1), False),
        ("prior-knowledge", ("127.0.0.1", 1), True),
        ("both", ("127.0.0.1", 1), True),
        ("both", ("203.0.113.9", 1), False),  # not in forwarded_allow_ips
        ("both", ("/run/app.sock", None), True),  # a Unix-socket peer is the local proxy
    ],
)
def test_prior_knowledge_policy(mode: str, client: tuple[str, int | None], allowed: bool) -> None:
    assert prior_knowledge_allowed(Config(http2_cleartext=mode), client) is allowed


def upgrade_request(settings: bytes, **changes: object) -> UpgradeRequest:
    request = UpgradeRequest(
        method="GET",
        target=b"/up?x=1",
        http_version="1.1",
        headers=[
            (b"host", b"example.org"),
            (b"connection", b"Upgrade, HTTP2-Settings"),
            (b"upgrade", b"h2c"),
            (b"http2-settings", settings),
            (b"accept", b"*/*"),
        ],
        conn=ConnectionInfo(client=("127.0.0.1", 40000), server=("127.0.0.1", 8000), scheme="http"),
        leftover=b"",
        config=Config(http2_cleartext="upgrade"),
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def client_settings() -> bytes:
    client = H2Connection(H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    assert settings is not None
    return settings


def test_upgrade_is_accepted_only_when_allowed() -> None:
    settings = client_settings()
    good = upgrade_request(settings)
    assert H2C_UPGRADE.accepts(good)
    assert H2C_UPGRADE.accepts(replace(good, config=Config(http2_cleartext="both")))
    refused = [
        replace(good, config=None),
        replace(good, config=Config()),  # http2_cleartext is off by default
        replace(good, config=Config(http2_cleartext="prior-knowledge")),
        replace(good, conn=replace(good.conn, client=("203.0.113.9", 1))),  # untrusted peer
        replace(good, conn=replace(good.conn, scheme="https", tls=object())),  # type: ignore[arg-type]
        replace(good, http_version="1.0"),
        replace(good, headers=[h for h in good.headers if h[0] != b"http2-settings"]),
        replace(good, headers=[*good.headers, (b"http2-settings", settings)]),  # twice
        replace(good, headers=[(n, b"Upgrade" if n == b"connection" else v) for n, v in good.headers]),
        replace(good, headers=[(n, b"!!not base64" if n == b"http2-settings" else v) for n, v in good.headers]),
        replace(good, headers=[*good.headers, (b"content-length", b"5")]),  # a body would precede the preface
        replace(good, headers=[*good.headers, (b"transfer-encoding", b"chunked")]),
    ]
    for request in refused:
        assert not H2C_UPGRADE.accepts(request), request


def test_upgrade_answers_101_and_serves_the_request_on_stream_1() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        message = await receive()
        assert message == {"type": "http.request", "body": b"", "more_body": False}
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"upgraded"})

    async def main() -> None:
        client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        settings = client.initiate_upgrade_connection()
        assert settings is not None
        context = ServerContext(
            app=app, config=Config(http2_cleartext="upgrade"), registry=Registry(discover=False)
        )
        request = upgrade_request(settings)
        protocol = H2C_UPGRADE.create_protocol(context, request)
        assert isinstance(protocol, H2Protocol)
        transport = MemoryTransport(protocol)
        protocol.connection_made(transport)
        protocol.data_received(client.data_to_send())  # the client preface, right after the 101
        events: list[ev.Event] = []
        out = bytearray()
        for _ in range(20):
            await asyncio.sleep(0)
            out += transport.take()
        assert out.startswith(SWITCHING)
        events = client.receive_data(bytes(out[len(SWITCHING) :]))
        response = next(e for e in events if isinstance(e, ev.ResponseReceived))
        assert response.stream_id == 1
        assert dict(response.headers)[b":status"] == b"200"
        data = b"".join(e.data for e in events if isinstance(e, ev.DataReceived) and e.stream_id == 1)
        assert data == b"upgraded"
        assert any(isinstance(e, ev.StreamEnded) and e.stream_id == 1 for e in events)
        # The connection goes on as HTTP/2.
        client.send_headers(
            3,
            [(":method", "GET"), (":path", "/next"), (":scheme", "http"), (":authority", "example.org")],
            end_stream=True,
        )
        protocol.data_received(client.data_to_send())
        for _ in range(20):
            await asyncio.sleep(0)
        events = client.receive_data(transport.take())
        assert any(isinstance(e, ev.StreamEnded) and e.stream_id == 3 for e in events)

    run(main())
    first = scopes[0]
    assert (first["method"], first["path"], first["query_string"], first["http_version"]) == (
        "GET",
        "/up",
        b"x=1",
        "2",
    )
    names = [name for name, _ in first["headers"]]
    for hop_by_hop in (b"http2-settings", b"upgrade", b"connection"):
        assert hop_by_hop not in names
    assert (b"accept", b"*/*") in first["headers"]
    assert scopes[1]["path"] == "/next"


@pytest.mark.parametrize(
    "data",
    [
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",  # h2spec 3.5/2: the preface's second line is wrong
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r" + b"\x00" * 9,  # one byte off at its very end
        b"PRI * HTTP/2.0\r\n\r\nS",  # only a prefix, and then a wrong byte:
        b"PRI * HTTP/2.0\r\n\r\nSX",  # refused at once, not after a timeout
        b"PRI * HTTP/2.0\r\nHost: x\r\n\r\n",  # what the dispatcher hands over after its 16 bytes
        b"GET / HTTP/1.1\r\n\r\n",
    ],
    ids=["second line", "last byte", "good prefix", "short and wrong", "http1 after PRI", "http1"],
)
@pytest.mark.parametrize("whole", [True, False], ids=["whole", "byte-at-a-time"])
def test_a_bad_preface_gets_goaway_protocol_error_and_a_close(data: bytes, whole: bool) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("never reached")

    async def main() -> None:
        protocol = H2Protocol(ServerContext(app=app, registry=Registry(discover=False)))
        transport = MemoryTransport(protocol)
        protocol.connection_made(transport)
        transport.take()  # our SETTINGS
        for piece in [data] if whole else [data[i : i + 1] for i in range(len(data))]:
            protocol.data_received(piece)
        if data == PREFACE[:19]:  # a correct prefix: wait for the rest
            assert not transport.closed
            assert transport.take() == b""
            return
        assert transport.closed
        (goaway,) = parse_frames(transport.take())
        assert isinstance(goaway, GoAwayFrame)
        assert goaway.error_code == ErrorCodes.PROTOCOL_ERROR

    run(main())
