"""The sans-IO packet parser alone: well-formed packets, every way a packet can be broken, and Hypothesis
checks that any bytes give events or a clean ParseError, the same whether fed whole or one byte at a time."""

from __future__ import annotations

import struct

import pytest
from asgi_uwsgi import (
    CLOSED,
    MAX_VARS_SIZE,
    NEED_DATA,
    Body,
    EndOfRequest,
    ModifierRefused,
    ParseError,
    Request,
    UwsgiParser,
    encode_packet,
    encode_vars,
    parse_vars,
)
from asgi_uwsgi._parser import Event
from hypothesis import given, settings
from hypothesis import strategies as st

NGINX_VARS = [
    (b"QUERY_STRING", b"a=1"),
    (b"REQUEST_METHOD", b"POST"),
    (b"CONTENT_TYPE", b"text/plain"),
    (b"CONTENT_LENGTH", b"5"),
    (b"REQUEST_URI", b"/x?a=1"),
    (b"HTTP_X_DUP", b"one"),
    (b"HTTP_X_DUP", b"two"),
]


def drain(parser: UwsgiParser) -> list[Event]:
    events: list[Event] = []
    while True:
        event = parser.next_event()
        if event is NEED_DATA or event is CLOSED:
            events.append(event)
            return events
        events.append(event)


def feed_all(data: bytes, *, eof: bool = True) -> list[Event]:
    parser = UwsgiParser()
    parser.receive_data(data)
    if eof:
        parser.receive_data(b"")
    return drain(parser)


def merged(events: list[Event]) -> list[Event]:
    """Body pieces joined and NEED_DATA dropped: what does not depend on how the bytes were split."""
    result: list[Event] = []
    for event in events:
        if event is NEED_DATA:
            continue
        if isinstance(event, Body) and result and isinstance(result[-1], Body):
            result[-1] = Body(result[-1].data + event.data)
        else:
            result.append(event)
    return result


def test_packet_with_body_gives_request_body_end() -> None:
    events = feed_all(encode_packet(NGINX_VARS, b"hello"))
    assert events == [
        Request(0, 0, tuple(NGINX_VARS), 5),
        Body(b"hello"),
        EndOfRequest(),
        CLOSED,
    ]
    request = events[0]
    assert isinstance(request, Request)
    assert request.get(b"HTTP_X_DUP") == b"one"  # duplicates kept in order; get() gives the first
    assert request.get(b"MISSING") is None


def test_header_layout_is_little_endian_with_modifiers() -> None:
    packet = encode_packet([(b"A", b"b")], modifier1=5, modifier2=9)
    assert packet[:4] == bytes([5]) + struct.pack("<H", 6) + bytes([9])
    assert packet[4:] == b"\x01\x00A\x01\x00b"
    assert feed_all(packet)[0] == Request(5, 9, ((b"A", b"b"),), 0)


def test_no_content_length_means_no_body_and_next_packet_follows() -> None:
    first = encode_packet([(b"REQUEST_METHOD", b"GET")])
    second = encode_packet([(b"REQUEST_METHOD", b"PUT"), (b"CONTENT_LENGTH", b"2")], b"ok")
    events = feed_all(first + second)
    assert [type(e).__name__ for e in events] == [
        "Request",
        "EndOfRequest",
        "Request",
        "Body",
        "EndOfRequest",
        "Signal",
    ]


def test_empty_content_length_and_empty_vars_block() -> None:
    assert feed_all(encode_packet([(b"CONTENT_LENGTH", b"")]))[:2] == [
        Request(0, 0, ((b"CONTENT_LENGTH", b""),), 0),
        EndOfRequest(),
    ]
    assert feed_all(encode_packet([]))[:2] == [Request(0, 0, (), 0), EndOfRequest()]


def test_body_is_not_read_past_content_length() -> None:
    parser = UwsgiParser()
    parser.receive_data(encode_packet([(b"CONTENT_LENGTH", b"3")], b"abcXYZ"))
    assert drain(parser)[:3] == [Request(0, 0, ((b"CONTENT_LENGTH", b"3"),), 3), Body(b"abc"), EndOfRequest()]
    # XYZ is the start of the next packet's header; it needs a fourth byte
    assert parser.next_event() is NEED_DATA


def test_need_data_until_complete_and_clean_close_between_packets() -> None:
    parser = UwsgiParser()
    assert parser.next_event() is NEED_DATA
    packet = encode_packet([(b"REQUEST_METHOD", b"GET")])
    parser.receive_data(packet[:3])
    assert parser.next_event() is NEED_DATA
    parser.receive_data(packet[3:10])
    assert parser.next_event() is NEED_DATA
    parser.receive_data(packet[10:])
    assert isinstance(parser.next_event(), Request)
    assert parser.next_event() == EndOfRequest()
    parser.receive_data(b"")
    assert parser.next_event() is CLOSED
    assert parser.next_event() is CLOSED


def test_state_and_body_remaining() -> None:
    parser = UwsgiParser()
    parser.receive_data(encode_packet([(b"CONTENT_LENGTH", b"10")], b"1234"))
    assert isinstance(parser.next_event(), Request)
    assert parser.in_body
    assert parser.next_event() == Body(b"1234")
    assert parser.body_remaining == 6
    assert parser.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x05", "closed after 2 of the 4 header bytes"),
        (b"\x00\x10\x00\x00\x03\x00ab", "closed after 4 of 16 variables bytes"),
        (encode_packet([(b"CONTENT_LENGTH", b"9")], b"abc"), "6 request body bytes still to come"),
    ],
)
def test_truncated_packet_is_a_parse_error(data: bytes, message: str) -> None:
    parser = UwsgiParser()
    parser.receive_data(data)
    parser.receive_data(b"")
    with pytest.raises(ParseError, match=message):
        drain(parser)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"\x05", "ends inside the length of a name"),
        (b"\x05\x00abc", "name of 5 bytes runs past the end"),
        (b"\x01\x00A", "ends inside the length of a value of b'A'"),
        (b"\x01\x00A\x09\x00xy", "value of b'A' of 9 bytes runs past"),
        (b"\x00\x00\x01\x00x", "empty variable name at offset 0"),
    ],
)
def test_malformed_vars_block_is_a_parse_error(block: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_vars(block)
    with pytest.raises(ParseError, match=message):
        feed_all(struct.pack("<BHB", 0, len(block), 0) + block, eof=False)


@pytest.mark.parametrize("value", [b"-1", b"+5", b"1.0", b" 5", b"0x10", b"\xd9\xa3", b"9" * 19])
def test_invalid_content_length_is_a_parse_error(value: bytes) -> None:
    with pytest.raises(ParseError, match=r"CONTENT_LENGTH .* is not a byte count"):
        feed_all(encode_packet([(b"CONTENT_LENGTH", value)]))


def test_conflicting_content_lengths_are_a_parse_error_and_equal_ones_are_not() -> None:
    with pytest.raises(ParseError, match="conflicting CONTENT_LENGTH"):
        feed_all(encode_packet([(b"CONTENT_LENGTH", b"1"), (b"CONTENT_LENGTH", b"2")], b"xx"))
    assert isinstance(feed_all(encode_packet([(b"CONTENT_LENGTH", b"1")] * 2, b"x"))[0], Request)


def test_vars_block_over_the_limit_is_refused_before_it_is_buffered() -> None:
    parser = UwsgiParser(max_vars_size=100)
    parser.receive_data(struct.pack("<BHB", 0, 101, 0))  # only the header: the limit applies at once
    with pytest.raises(ParseError, match="variables block of 101 bytes is over the limit of 100 bytes"):
        parser.next_event()
    exact = encode_packet([(b"K", b"v" * 94)])  # 2 + 1 + 2 + 94 = 99 bytes
    limited = UwsgiParser(max_vars_size=99)
    limited.receive_data(exact)
    assert isinstance(limited.next_event(), Request)


def test_parser_stays_failed_after_an_error() -> None:
    parser = UwsgiParser()
    parser.receive_data(b"\x00\x01\x00\x00\x00")
    with pytest.raises(ParseError) as first:
        parser.next_event()
    parser.receive_data(encode_packet([(b"REQUEST_METHOD", b"GET")]))
    with pytest.raises(ParseError) as again:
        parser.next_event()
    assert again.value is first.value
    assert parser.state == "failed"


def test_caller_errors_are_not_parse_errors() -> None:
    with pytest.raises(ValueError, match="max_vars_size must be 1 to 65535"):
        UwsgiParser(max_vars_size=70000)
    parser = UwsgiParser()
    parser.receive_data(b"")
    with pytest.raises(RuntimeError, match="after EOF"):
        parser.receive_data(b"x")
    with pytest.raises(ValueError, match="variables block of"):
        encode_vars([(b"K", b"v" * 65531)])
    with pytest.raises(ValueError, match="variable part of 65536 bytes"):
        encode_vars([(b"K", b"v" * 65536)])


def test_largest_possible_vars_block_parses() -> None:
    variables = [(b"HTTP_X_BIG", b"v" * (MAX_VARS_SIZE - 14))]
    packet = encode_packet(variables)
    assert len(packet) == 4 + MAX_VARS_SIZE
    assert feed_all(packet)[0] == Request(0, 0, tuple(variables), 0)


# ---- properties --------------------------------------------------------------------------------------

names = st.binary(min_size=1, max_size=40)
values = st.binary(max_size=200)
variables = st.lists(st.tuples(names, values), max_size=12)


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(max_size=300))
    pairs = [pair for pair in draw(variables) if pair[0] != b"CONTENT_LENGTH"]
    if body or draw(st.booleans()):
        pairs.insert(draw(st.integers(0, len(pairs))), (b"CONTENT_LENGTH", str(len(body)).encode()))
    return encode_packet(pairs, body, modifier1=draw(st.integers(0, 255)), modifier2=draw(st.integers(0, 255)))


def outcome(chunks: list[bytes]) -> tuple[list[Event], str | None]:
    """Events (merged) and the error, if any, from feeding `chunks` and then EOF."""
    parser = UwsgiParser(max_vars_size=2000)
    events: list[Event] = []
    try:
        for chunk in [*(chunk for chunk in chunks if chunk), b""]:
            parser.receive_data(chunk)
            while (event := parser.next_event()) is not NEED_DATA:
                events.append(event)
                if event is CLOSED:
                    break
    except ParseError as exc:
        return merged(events), str(exc)
    return merged(events), None


@settings(max_examples=300, deadline=None)
@given(st.lists(packets(), min_size=1, max_size=3))
def test_well_formed_packets_round_trip(stream: list[bytes]) -> None:
    data = b"".join(stream)
    events, error = outcome([data])
    assert error is None
    requests = [e for e in events if isinstance(e, Request)]
    assert len(requests) == len(stream)
    assert [encode_packet(r.variables, modifier1=r.modifier1, modifier2=r.modifier2) for r in requests] == [
        p[: 4 + struct.unpack_from("<H", p, 1)[0]] for p in stream
    ]
    assert events[-1] is CLOSED


#: Garbage, half packets, and whole packets followed by garbage.
streams = st.one_of(
    st.binary(max_size=400),
    packets().map(lambda packet: packet[: len(packet) // 2]),
    st.builds(bytes.__add__, packets(), st.binary(max_size=50)),
)


@settings(max_examples=300, deadline=None)
@given(streams)
def test_any_bytes_give_events_or_a_parse_error_alike_whole_and_byte_at_a_time(data: bytes) -> None:
    whole = outcome([data])
    bytewise = outcome([data[i : i + 1] for i in range(len(data))])
    assert whole == bytewise
    events, error = whole
    for event in events:
        assert isinstance(event, (Request, Body, EndOfRequest)) or event is CLOSED
    assert (error is None) == (events[-1:] == [CLOSED])


@settings(max_examples=200, deadline=None)
@given(streams, st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_random_splits_give_the_same_events(data: bytes, sizes: list[int]) -> None:
    chunks, offset = [], 0
    for size in sizes * (len(data) // max(sum(sizes), 1) + 1):
        if offset >= len(data):
            break
        chunks.append(data[offset : offset + size])
        offset += size
    assert outcome(chunks) == outcome([data])


# ---- modifier1 ---------------------------------------------------------------------------------------


def test_unserved_modifier1_is_refused_at_the_header() -> None:
    parser = UwsgiParser(modifier1=(0, 30))
    parser.receive_data(struct.pack("<BHB", 5, 40, 0))  # the header alone: refused before its block arrives
    with pytest.raises(ModifierRefused, match=r"modifier1 5 is not served \(this server serves 0, 30\)"):
        parser.next_event()
    assert parser.state == "failed"


@pytest.mark.parametrize("modifier1", [0, 30])
def test_served_modifier1_values_parse(modifier1: int) -> None:
    parser = UwsgiParser(modifier1=(0, 30))
    parser.receive_data(encode_packet([(b"REQUEST_METHOD", b"GET")], modifier1=modifier1))
    event = parser.next_event()
    assert isinstance(event, Request)
    assert event.modifier1 == modifier1


def test_every_modifier1_parses_by_default() -> None:
    event = feed_all(encode_packet([(b"REQUEST_METHOD", b"GET")], modifier1=111, modifier2=7))[0]
    assert isinstance(event, Request)
    assert (event.modifier1, event.modifier2) == (111, 7)
