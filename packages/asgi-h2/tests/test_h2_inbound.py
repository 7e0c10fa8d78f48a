"""Received bytes cut at frame boundaries (`_inbound`): an oversized frame is refused however the bytes are
split, everything else reaches h2 byte for byte, and a request taken in without h2's frame objects gives the
same request, and leaves h2 in the same state, as h2's own `receive_data`, whatever the frames around it
(bodies, PRIORITY, PADDED, CONTINUATION, resets, settings, pings) and however the bytes are split."""

from __future__ import annotations

from typing import Any

import pytest
from asgi_core import Config
from asgi_h2 import PREFACE
from asgi_h2._errors import FrameTooLarge
from asgi_h2._inbound import InboundFrames
from asgi_h2._settings import new_connection, send_initial_settings
from h2 import events as ev
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError
from h2.stream import H2Stream
from hpack import Encoder
from hypothesis import given, settings
from hypothesis import strategies as st


class Recorder:
    """What `InboundFrames` hands on, as the protocol would take it: a real h2 server connection, with what
    reached it."""

    def __init__(self) -> None:
        self.conn = new_connection(Config(), connect_protocol=False)
        self.conn.initiate_connection()
        send_initial_settings(self.conn, Config())
        self.to_h2 = bytearray()
        self.seen: list[tuple[Any, ...]] = []
        self.closed = False

    def receive_h2(self, data: bytes) -> bool:
        self.to_h2 += data
        for event in self.conn.receive_data(data):
            if isinstance(event, ev.RequestReceived):
                self.new_request(event.stream_id, event.headers, event.stream_ended is not None)
            elif not isinstance(event, ev.StreamEnded) or event.stream_id not in self.requests_ended():
                self.seen.append((type(event).__name__, getattr(event, "stream_id", None)))
        return True

    def new_request(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: bool) -> bool:
        self.seen.append(("request", stream_id, list(headers), ended))
        return True

    def requests_ended(self) -> set[int]:
        """Streams whose StreamEnded came with their request (part of the request event here)."""
        return {entry[1] for entry in self.seen if entry[0] == "request" and entry[3]}


def inbound_frames(recorder: Recorder, max_size: int) -> InboundFrames:
    return InboundFrames(
        recorder.conn,
        max_size,
        skip=len(PREFACE),
        to_h2=recorder.receive_h2,
        new_request=recorder.new_request,
    )


def h2_state(conn: H2Connection) -> tuple[Any, ...]:
    """What h2 knows of the connection. A closed stream counts once, wherever h2 keeps it: h2 moves closed
    streams out of its table when it next counts the open ones, which `_inbound` asks for less often."""
    streams = conn.streams.items()
    closed = {sid: s.closed_by for sid, s in streams if s.closed} | dict(conn._closed_streams.items())
    return (
        conn.state_machine.state,
        conn.highest_inbound_stream_id,
        {sid: stream_state(s) for sid, s in streams if not s.closed},
        closed,
        conn.inbound_flow_control_window,
        conn.data_to_send(),
    )


def stream_state(stream: H2Stream) -> list[tuple[str, Any]]:
    """Every attribute of an h2 stream, those of its state machine and window manager included (its config is
    its connection's)."""
    fields = []
    for name, value in vars(stream).items():
        if name != "config":
            fields.append((name, sorted(vars(value).items()) if hasattr(value, "__dict__") else value))
    return sorted(fields)


def client_bytes(kinds: list[str]) -> bytes:
    # Outbound checks off, so that the client can send what no request should carry (`:status`).
    client = H2Connection(H2Configuration(client_side=True, validate_outbound_headers=False))
    client.initiate_connection()
    head = [(":method", "GET"), (":path", "/x"), (":scheme", "https"), (":authority", "example.org")]
    stream_id = 1
    for kind in kinds:
        if kind == "get":
            client.send_headers(stream_id, head, end_stream=True)
        elif kind == "post":
            client.send_headers(stream_id, [*head, ("content-length", "3")])
            client.send_data(stream_id, b"abc", end_stream=True)
        elif kind == "priority":
            client.send_headers(stream_id, head, end_stream=True, priority_weight=10)
        elif kind == "padded":
            client.send_headers(stream_id, head)
            client.send_data(stream_id, b"body", end_stream=True, pad_length=5)
        elif kind == "status":  # h2 weighs a block naming :status as a response: its own path
            client.send_headers(stream_id, [*head, (":status", "200")], end_stream=True)
        elif kind == "sized":  # a GET announcing an empty body
            client.send_headers(stream_id, [*head, ("content-length", "0")], end_stream=True)
        elif kind == "long":  # a header block in HEADERS and CONTINUATION frames
            client.send_headers(stream_id, [*head, ("x-long", "v" * 40_000)], end_stream=True)
        elif kind == "reset":
            client.send_headers(stream_id, head)
            client.reset_stream(stream_id, ErrorCodes.CANCEL)
        elif kind == "ping":
            client.ping(b"12345678")
            continue
        stream_id += 2
    return client.data_to_send()


KINDS = st.lists(
    st.sampled_from(["get", "post", "priority", "padded", "long", "reset", "ping", "status", "sized"]), max_size=8
)


@settings(max_examples=150, deadline=None)
@given(kinds=KINDS, cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=30))
def test_requests_taken_in_here_are_what_h2_makes_of_them(kinds: list[str], cuts: list[int]) -> None:
    data = client_bytes(kinds)
    theirs = Recorder()
    theirs.receive_h2(data)
    ours = Recorder()
    inbound = inbound_frames(ours, 1 << 20)
    position = 0
    for cut in [*cuts, len(data)]:
        piece = data[position : position + cut]
        position += len(piece)
        if piece:
            inbound.receive(piece)
    assert ours.seen == theirs.seen
    assert h2_state(ours.conn) == h2_state(theirs.conn)


def test_closed_streams_are_forgotten_in_bulk_and_the_table_stays_bounded() -> None:
    # h2 walks its whole stream table for every new stream; here that walk comes once the table has doubled.
    data = client_bytes(["reset", "reset", "get", "reset", "post", "reset"] * 50)
    theirs = Recorder()
    theirs.receive_h2(data)
    ours = Recorder()
    inbound = inbound_frames(ours, 1 << 20)
    largest = 0
    for position in range(0, len(data), 1000):
        inbound.receive(data[position : position + 1000])
        largest = max(largest, len(ours.conn.streams))
    assert ours.seen == theirs.seen
    assert h2_state(ours.conn) == h2_state(theirs.conn)
    open_streams = sum(1 for stream in ours.conn.streams.values() if not stream.closed)
    assert open_streams == 100  # the get and post streams, which the server has not answered
    assert largest <= max(64, 2 * open_streams)  # the 200 closed ones never pile up past the doubling


def test_a_bad_header_block_ends_the_connection_as_h2_would() -> None:
    ours, theirs = Recorder(), Recorder()
    preface = client_bytes([])
    bad = b"\x00\x00\x01\x01\x05\x00\x00\x00\x01" + b"\xff"  # HEADERS, END_STREAM | END_HEADERS, bad HPACK
    theirs.receive_h2(preface)
    with pytest.raises(ProtocolError):
        theirs.receive_h2(bad)
    inbound = inbound_frames(ours, 1 << 20)
    inbound.receive(preface)
    with pytest.raises(ProtocolError):
        inbound.receive(bad)
    assert h2_state(ours.conn) == h2_state(theirs.conn)


def frame(length: int, frame_type: int = 0) -> bytes:
    return length.to_bytes(3, "big") + bytes([frame_type, 0]) + (1).to_bytes(4, "big") + b"p" * length


@given(
    lengths=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12),
    oversized_at=st.one_of(st.none(), st.integers(min_value=0, max_value=11)),
    cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=40),
)
def test_frame_size_guard_ignores_how_bytes_are_split(
    lengths: list[int], oversized_at: int | None, cuts: list[int]
) -> None:
    if oversized_at is not None and oversized_at < len(lengths):
        lengths[oversized_at] = 41
    expected = all(length <= 40 for length in lengths)
    data = PREFACE + b"".join(frame(length) for length in lengths)
    verdicts = []
    for pieces in ([data], split(data, cuts)):
        sink = _Sink()
        inbound = inbound_frames(sink, 40)
        try:
            for piece in pieces:
                inbound.receive(piece)
        except FrameTooLarge:
            verdicts.append(False)
        else:
            verdicts.append(True)
            assert bytes(sink.to_h2) == data  # accepted bytes reach h2 as they came
    assert verdicts == [expected, expected]


class _Sink(Recorder):
    """Takes the bytes meant for h2 without reading them (the frames here are not a valid connection)."""

    def receive_h2(self, data: bytes) -> bool:
        self.to_h2 += data
        return True


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    pieces, position = [], 0
    for cut in cuts:
        if position < len(data):
            pieces.append(data[position : position + cut])
            position += cut
    if position < len(data):
        pieces.append(data[position:])
    return pieces


@pytest.mark.parametrize(
    ("field", "value"),
    [(":status", "103"), ("content-length", "x")],
    ids=["informational-status", "bad-content-length"],
)
def test_a_request_h2_refuses_ends_the_connection_as_h2_would(field: str, value: str) -> None:
    preface = client_bytes([])
    head = [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "example.org")]
    block = Encoder().encode([*head, (field, value)])  # h2's client will not send it
    bad = len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block  # HEADERS, END_STREAM, stream 1
    ours, theirs = Recorder(), Recorder()
    theirs.receive_h2(preface)
    with pytest.raises(ProtocolError) as h2_error:
        theirs.receive_h2(bad)
    inbound = inbound_frames(ours, 1 << 20)
    inbound.receive(preface)
    with pytest.raises(ProtocolError) as our_error:
        inbound.receive(bad)
    assert str(our_error.value) == str(h2_error.value)
    assert h2_state(ours.conn) == h2_state(theirs.conn)
