"""The common-frame path (`_frames.py`) against wsproto: the same messages in, the same bytes out, and every
other frame left to wsproto untouched."""

from __future__ import annotations

import os

import pytest
from asgi_wsproto._frames import FrameReader, HandOff, data_frame, unmask
from hypothesis import given
from hypothesis import strategies as st
from ws_peer import Peer, Recorder, echo, run
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Ping, Pong, TextMessage
from wsproto.frame_protocol import FrameProtocol, Opcode

MASK = b"\x37\xfa\x21\x3d"


def client_frame(message: str | bytes, *, fin: bool = True) -> bytes:
    """What a wsproto client puts on the wire for `message` (masked)."""
    protocol = FrameProtocol(client=True, extensions=[])
    return bytes(protocol.send_data(message, fin=fin))


def server_frame(message: str | bytes) -> bytes:
    protocol = FrameProtocol(client=False, extensions=[])
    return bytes(protocol.send_data(message, fin=True))


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
@pytest.mark.parametrize("kind", [str, bytes])
def test_server_frames_are_wsprotos_bytes(size: int, kind: type) -> None:
    message: str | bytes = "é" * (size // 2) if kind is str else os.urandom(size)
    assert data_frame(message) == server_frame(message)


@given(st.binary(max_size=600), st.binary(min_size=4, max_size=4))
def test_unmask_is_the_rfc_xor(payload: bytes, key: bytes) -> None:
    expected = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
    assert unmask(payload, key) == expected


@given(st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=6), st.integers(1, 50))
def test_client_frames_in_any_chunking_give_the_messages_back(messages: list[str | bytes], chunk: int) -> None:
    wire = b"".join(client_frame(message) for message in messages)
    reader = FrameReader(limit=None)
    received: list[str | bytes] = []
    for start in range(0, len(wire), chunk):
        reader.feed(wire[start : start + chunk])
        while (message := reader.next_message()) is not None:
            received.append(message)
    assert received == messages
    assert reader.take_rest() == b""


@given(st.text(max_size=300), st.integers(1, 50))
def test_invalid_utf8_is_handed_over_as_soon_as_it_arrives(prefix: str, chunk: int) -> None:
    """Fail fast on UTF-8 (Autobahn 6.4.3): not at the end of the frame, but in the read that brings the bad
    byte, whatever the chunking (the masking key continues across reads)."""
    payload = prefix.encode() + b"\xff" + b"never read: the frame is refused before"
    size = len(payload)
    head = bytes((0x81, 0x80 | size)) if size <= 125 else bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    wire = head + MASK + unmask(payload, MASK)
    bad = len(head) + 4 + len(prefix.encode())  # the offset of the invalid byte
    reader = FrameReader(limit=None)
    for start in range(0, len(wire), chunk):
        reader.feed(wire[start : start + chunk])
        try:
            assert reader.next_message() is None
        except HandOff:
            assert start <= bad < start + chunk
            assert reader.take_rest() == wire[: start + chunk]  # wsproto reads the frame again from its start
            return
        assert start + chunk <= bad
    raise AssertionError("never handed over")


def test_a_64_bit_length_is_handed_over() -> None:
    big = client_frame(b"x" * 65536)
    reader = FrameReader(limit=None)
    reader.feed(client_frame("small") + big)
    assert reader.next_message() == "small"
    with pytest.raises(HandOff):
        reader.next_message()
    assert reader.take_rest() == big


@pytest.mark.parametrize(
    "frame",
    [
        Connection(ConnectionType.CLIENT).send(Ping(payload=b"hi")),
        client_frame("part", fin=False),
        client_frame(b"x" * 100)[:1] + bytes([client_frame(b"x" * 100)[1] & 0x7F]) + b"x" * 100,  # unmasked
        b"\xc1" + client_frame("deflated?")[1:],  # RSV1
        b"\x81\xfe\x00\x05" + MASK + unmask(b"hello", MASK),  # long form for a short length
        b"\x81\x82" + MASK + unmask(b"\xc3\x28", MASK),  # not UTF-8
    ],
    ids=["ping", "fragment", "unmasked", "rsv1", "long-length-form", "bad-utf8"],
)
def test_any_other_frame_is_handed_over_whole(frame: bytes) -> None:
    reader = FrameReader(limit=None)
    after = client_frame("after")  # masks are random: build each frame once
    reader.feed(client_frame("first") + frame + after)
    assert reader.next_message() == "first"
    with pytest.raises(HandOff):
        reader.next_message()
    assert reader.take_rest() == frame + after


def test_a_message_over_the_limit_is_handed_over() -> None:
    reader = FrameReader(limit=10)
    reader.feed(client_frame(b"0123456789") + client_frame(b"0123456789!"))
    assert reader.next_message() == b"0123456789"
    with pytest.raises(HandOff):
        reader.next_message()


def test_messages_after_wsproto_took_over_still_arrive() -> None:
    async def scenario() -> None:
        peer = Peer(Recorder(echo))
        await peer.open()
        for event in [
            TextMessage(data="before"),
            Ping(payload=b"p"),
            TextMessage(data="after"),
            BytesMessage(data=b"!"),
        ]:
            peer.send(event)
        replies = [await peer.next_event() for _ in range(4)]
        # The pong goes out at once, the echoes when the app gets to them: only the echoes keep their order.
        assert [reply.payload for reply in replies if isinstance(reply, Pong)] == [b"p"]
        assert [reply.data for reply in replies if isinstance(reply, (TextMessage, BytesMessage))] == [
            "before",
            "after",
            b"!",
        ]
        peer.protocol.connection_lost(None)

    run(scenario())


def test_opcode_constants_match_wsproto() -> None:
    assert data_frame("x")[0] == 0x80 | Opcode.TEXT
    assert data_frame(b"x")[0] == 0x80 | Opcode.BINARY
