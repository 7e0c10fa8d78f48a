"""permessage-deflate negotiation (RFC 7692 section 7.1) and the frame-level extensions on their own."""

from __future__ import annotations

import zlib

import pytest
from asgi_wsproto._extensions import DeflateOffer, MessageBudget, PerMessageDeflate, negotiate_deflate
from hypothesis import given
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage
from wsproto.extensions import PerMessageDeflate as ClientDeflate


def offer(value: bytes) -> DeflateOffer | None:
    return negotiate_deflate([(b"sec-websocket-extensions", value)])


@pytest.mark.parametrize(
    ("header", "response"),
    [
        (b"permessage-deflate", "permessage-deflate"),
        (b"permessage-deflate; client_max_window_bits", "permessage-deflate"),
        (b"permessage-deflate; client_max_window_bits=10", "permessage-deflate"),
        (b"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"),
        (b"permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10"),
        (b'permessage-deflate; server_max_window_bits="12"', "permessage-deflate; server_max_window_bits=12"),
        (b"PerMessage-Deflate; Client_No_Context_Takeover", "permessage-deflate"),
        (b"x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"),
        # The first acceptable offer wins; invalid ones are declined, not answered.
        (b"permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate"),
        (
            b"permessage-deflate; foo=1, permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        (b"permessage-deflate; server_max_window_bits=16", None),
        (b"permessage-deflate; server_max_window_bits", None),
        (b"permessage-deflate; server_max_window_bits=010", None),
        (b"permessage-deflate; client_max_window_bits=7", None),
        (b"permessage-deflate; server_no_context_takeover=1", None),
        (b"permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        (b"x-webkit-deflate-frame", None),
        (b"", None),
    ],
)
def test_negotiation(header: bytes, response: str | None) -> None:
    result = offer(header)
    assert (result.response() if result else None) == response


def test_offers_split_across_header_lines() -> None:
    headers = [
        (b"sec-websocket-extensions", b"permessage-deflate; foo"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
    ]
    result = negotiate_deflate(headers)
    assert result is not None
    assert result.response() == "permessage-deflate"


@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_round_trip_with_wsproto_client(no_context_takeover: bool) -> None:
    negotiated = DeflateOffer(server_no_context_takeover=no_context_takeover)
    server = Connection(ConnectionType.SERVER, [PerMessageDeflate(negotiated, MessageBudget(1 << 20))])
    client_extension = ClientDeflate()
    client_extension.finalize(negotiated.response())
    client = Connection(ConnectionType.CLIENT, [client_extension])
    sizes = []
    for text in ["hello hello hello", "hello hello hello", "x" * 5000]:
        client.receive_data(server.send(TextMessage(data=text)))
        wire = server.send(TextMessage(data=text))
        sizes.append(len(wire))
        client.receive_data(wire)
        received = [event.data for event in client.events() if isinstance(event, TextMessage)]
        assert received == [text, text]
        server.receive_data(client.send(BytesMessage(data=text.encode())))
        assert [e.data for e in server.events() if isinstance(e, BytesMessage)] == [text.encode()]
    if no_context_takeover:
        assert sizes[0] == sizes[1]  # each message compressed from scratch
    else:
        assert sizes[1] < sizes[0]  # the second refers back to the first


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=8), st.integers(min_value=1, max_value=600))
def test_inflating_in_any_chunking_gives_the_messages_back(messages: list[bytes], chunk: int) -> None:
    client_extension = ClientDeflate()
    client_extension.finalize("permessage-deflate")
    client = Connection(ConnectionType.CLIENT, [client_extension])
    server = Connection(ConnectionType.SERVER, [PerMessageDeflate(DeflateOffer(), MessageBudget(1 << 20))])
    wire = b"".join(client.send(BytesMessage(data=message)) for message in messages)
    received: list[bytes] = []
    parts: list[bytes] = []
    for start in range(0, len(wire), chunk):
        server.receive_data(wire[start : start + chunk])
        for event in server.events():
            assert isinstance(event, BytesMessage)
            parts.append(bytes(event.data))
            if event.message_finished:
                received.append(b"".join(parts))
                parts = []
    assert received == messages


def test_window_bits_the_client_asked_for_are_used() -> None:
    negotiated = offer(b"permessage-deflate; server_max_window_bits=9")
    assert negotiated is not None
    server = Connection(ConnectionType.SERVER, [PerMessageDeflate(negotiated, MessageBudget(1 << 20))])
    payload = bytes(range(256)) * 40
    wire = server.send(BytesMessage(data=payload))
    # A 9-bit inflater can read it: nothing refers further back than 512 bytes.
    body = wire[4:] if wire[1] == 126 else wire[10:]
    inflater = zlib.decompressobj(-9)
    assert inflater.decompress(body + b"\x00\x00\xff\xff") == payload
