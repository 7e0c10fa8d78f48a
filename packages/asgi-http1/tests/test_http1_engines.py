"""The engine, with each of its two head parsers, against h11's own `Connection` (the oracle, `h11_oracle.py`):
the same bytes in must give the same events, the same status for a refused request, and the same response bytes
out, for valid, odd and random input alike."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from asgi_core import Config, PeerError
from asgi_http1._engine import Engine, select_engine
from asgi_http1._fast_heads import FastHeads
from asgi_http1._parsers import H11Heads, select_parser
from asgi_http1._request import Request, Signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The oracle sits beside this file; pytest imports tests by path (--import-mode=importlib) without putting their
# directory on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from h11_oracle import H11Oracle

CONFIG = Config(limit_request_line=200, limit_request_fields=20, limit_request_field_size=200)
PARSERS = ("h11", "httptools")
AnyEngine = Engine | H11Oracle


def engines() -> tuple[AnyEngine, ...]:
    """The oracle first, then the engine with each parser."""
    return (H11Oracle(CONFIG), *(select_engine(parser)(CONFIG) for parser in PARSERS))


def agree(run: Any) -> None:
    """`run(engine)` gives the oracle's answer with every parser."""
    oracle, *tested = engines()
    expected = run(oracle)
    for engine in tested:
        assert run(engine) == expected


def test_auto_prefers_httptools_and_h11_can_be_forced() -> None:
    assert select_parser("auto") is FastHeads
    assert select_parser("httptools") is FastHeads
    assert select_parser("h11") is H11Heads
    assert isinstance(select_engine("auto")(CONFIG), Engine)
    with pytest.raises(ValueError, match="'fast-please' is unknown"):
        select_engine("fast-please")


def converse(engine: AnyEngine, chunks: list[bytes], *, eof: bool) -> list[Any]:
    """Feed `chunks`, answering every complete request with a small response as the protocol would; a log of
    every event, flag and byte the engine gave."""
    log: list[Any] = []
    method = b""
    inputs = [*chunks, b""] if eof else chunks
    for chunk in inputs:
        if engine.input_finished:
            log.append("input finished")
            break
        engine.receive_data(chunk)
        while True:
            try:
                event = engine.next_event()
            except PeerError as exc:
                log.append(("refused", exc.status))
                return log
            if isinstance(event, Request):
                method = event.method
                log.append(("request", event.method, event.target, event.http_version, event.headers))
                if not event.body_expected:
                    log.append(("waiting for 100", engine.waiting_for_100_continue, engine.trailing_data))
                elif event.body is not None:
                    # The engine may hand over a body that came whole with its head (h11 gives it as
                    # events): logged as the events it stands for. Which of the two happened also decides what
                    # is still buffered and whether 100 Continue is pending, so those are logged only above.
                    log.extend([("data", event.body), Signal.END_OF_MESSAGE])
                    event = Signal.END_OF_MESSAGE
            elif not isinstance(event, Signal):
                log.append(("data", bytes(event)))
            else:
                log.append(event)
            if event is Signal.END_OF_MESSAGE or (isinstance(event, Request) and event.complete):
                # Never a 2xx to CONNECT: the protocol refuses to open a tunnel.
                head = engine.send_response(
                    405 if method == b"CONNECT" else 200, [(b"content-type", b"text/plain")]
                )
                body = engine.send_data(b"" if method == b"HEAD" else b"ok")  # the cycle sends HEAD no body
                log.append(("response", head, body, engine.send_end(None)))
                log.append(("flags", engine.must_close, engine.request_complete, engine.input_finished))
                if engine.must_close or not engine.request_complete:
                    return log
                engine.start_next_cycle()
            elif event in (Signal.NEED_DATA, Signal.PAUSED, Signal.CONNECTION_CLOSED):
                break
    return log


H = b"Host: example.com\r\n"
ODD_REQUESTS = [
    b"GET / HTTP/1.1\r\n" + H + b"\r\n",
    b"FOO /custom HTTP/1.1\r\n" + H + b"\r\n",  # h11 takes any token as a method; llhttp knows a fixed list
    b"get /lower HTTP/1.1\r\n" + H + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"X-Ctl: a\x01b\x7f\r\n\r\n",  # control bytes: h11 tolerates them, llhttp not
    b"GET / HTTP/1.1\r\n" + H + b"X-Obs: caf\xc3\xa9\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"X-Pad:   a b  \t\r\nX-Empty:\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.2\r\n\r\n",  # h11 wants a Host only from 1.1 exactly
    b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
    b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n",
    b" GET / HTTP/1.1\r\n" + H + b"\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 000000000000000000005\r\n\r\nhello",
    b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5 \t\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;x=\x01\r \r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n00000000000000000005\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n000000000000000000005\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: x\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\n",
    b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: x\r\n\r\nleftover",
    b"POST /up HTTP/1.1\r\n"
    + H
    + b"Upgrade: x\r\nContent-Length: 3\r\n\r\nabc"
    + b"GET / HTTP/1.1\r\n"
    + H
    + b"\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n" + b"GET / HTTP/1.1\r\n" + H + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive, CLOSE\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 300 + b"\r\n\r\n",
    b"GET /" + b"a" * 300,
    b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 9000,
    # Bounds of our own, on both engines: control characters in field values and trailers, the chunk-size line
    # (4 KiB) and the extension bytes of one request (16 KiB).
    b"GET / HTTP/1.1\r\n" + H + b"X: a\x07b\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H + b"X: \x7f\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX: \x1b\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1;" + b"e" * 4094 + b"\r\nx\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1;" + b"e" * 4095 + b"\r\nx\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1;" + b"e" * 5000,
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + (b"1;" + b"e" * 1022 + b"\r\nx\r\n") * 20,
]


@pytest.mark.parametrize("data", ODD_REQUESTS)
@pytest.mark.parametrize("split", [0, 1])
def test_odd_requests_get_the_same_answer(data: bytes, split: int) -> None:
    chunks = [data[i : i + 1] for i in range(len(data))] if split else [data]
    for eof in (False, True):
        agree(lambda engine, eof=eof: converse(engine, chunks, eof=eof))


FRAGMENTS = [
    b"GET / HTTP/1.1\r\n",
    b"POST /p HTTP/1.0\r\n",
    b"OPTIONS * HTTP/1.1\r\n",
    b"Host: a\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 0\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"Connection: upgrade\r\nUpgrade: x\r\n",
    b"\r\n",
    b"3\r\nabc\r\n",
    b"0\r\n\r\n",
    b"abc",
    b" ",
    b"\t",
    b"\n",
    b"\r",
    b"\x00",
    b"\x7f",
    b":",
    b";",
]
streams = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=8), max_size=16).map(b"".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.integers(min_value=1, max_value=40), st.booleans())
def test_random_input_gets_the_same_events_from_both_engines(data: bytes, piece: int, eof: bool) -> None:
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]
    agree(lambda engine: converse(engine, chunks, eof=eof))


REQUEST_LINES = [
    b"GET / HTTP/1.1",
    b"POST /p HTTP/1.1",
    b"GET / HTTP/1.0",
    b"HEAD / HTTP/1.1",
    b"OPTIONS * HTTP/1.1",
    b"CONNECT a:1 HTTP/1.1",
    b"FOO /x HTTP/1.1",
    b"GET / HTTP/1.2",
    b"GET / HTTP/2.0",
    b"GET /a?b=c#d HTTP/1.1",
]
FIELD_LINES = [
    b"Host: a",
    b"Host: a",
    b"Content-Length: 3",
    b"Content-Length: 0",
    b"Content-Length: 3, 3",
    b"Transfer-Encoding: chunked",
    b"transfer-encoding: Chunked",
    b"Transfer-Encoding: gzip",
    b"Connection: close",
    b"Connection: keep-alive, upgrade",
    b"Upgrade: x",
    b"Expect: 100-continue",
    b"X: a\x01b",
    b"X: \x7f",
    b"X:",
    b"X:  spaced  ",
    b" folded",
    b"Bad Name: x",
]
BODIES = [
    b"",
    b"abc",
    b"0\r\n\r\n",
    b"3\r\nabc\r\n0\r\n\r\n",
    b"3 \r\nabc\r\n0\r\n\r\n",
    b"3;e=\x01\r\nabc\r\n0\r\nX: y\r\n\r\n",
    b"3\r\nabc\r\n0\r\nX: y\r\n z\r\n\r\n",
]
requests = st.builds(
    lambda line, fields, body: line + b"\r\n" + b"".join(field + b"\r\n" for field in fields) + b"\r\n" + body,
    st.sampled_from(REQUEST_LINES),
    st.lists(st.sampled_from(FIELD_LINES) | st.binary(max_size=6), max_size=5),
    st.sampled_from(BODIES) | st.binary(max_size=8),
)
conversations = st.lists(requests | st.binary(max_size=6), min_size=1, max_size=4).map(b"".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations, st.integers(min_value=1, max_value=64), st.booleans())
def test_random_requests_get_the_same_events_from_both_engines(data: bytes, piece: int, eof: bool) -> None:
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]
    agree(lambda engine: converse(engine, chunks, eof=eof))


def respond(
    engine: AnyEngine, request: bytes, status: int, headers: list[tuple[bytes, bytes]], body: list[bytes]
) -> Any:
    engine.receive_data(request)
    while True:
        event = engine.next_event()
        if event is Signal.END_OF_MESSAGE or (isinstance(event, Request) and event.complete):
            break
    try:
        out: list[Any] = [engine.send_response(status, headers)]
    except ValueError as exc:
        return ("invalid", str(exc))
    try:
        out.extend(engine.send_data(piece) for piece in body)
        out.append(engine.frame_file(3)[0])
        out.append(engine.send_end([(b"x-trailer", b"t")] if status == 299 else None))
    except Exception as exc:  # noqa: BLE001 - h11 and the engine name their framing errors differently
        out.append(("failed", type(exc).__name__ in ("LocalProtocolError", "FramingError")))
    return out, engine.must_close


FIELDS = [
    (b"content-type", b"text/plain"),
    (b"Content-Length", b"5"),
    (b"content-length", b"8"),
    (b"content-length", b"5, 5"),
    (b"transfer-encoding", b"chunked"),
    (b"Transfer-Encoding", b"gzip"),
    (b"connection", b"close"),
    (b"Connection", b"keep-alive, Upgrade"),
    (b"host", b"h"),
    (b"x-bad value", b"x"),
    (b"x-space", b" padded "),
    (b"x-ctl", b"a\x01b"),
    (b"x-crlf", b"a\r\nb"),
]
METHODS_AND_VERSIONS = [b"GET", b"HEAD", b"POST", b"CONNECT"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(METHODS_AND_VERSIONS),
    st.sampled_from([b"1.0", b"1.1"]),
    st.sampled_from([b"", b"Connection: close\r\n", b"Expect: 100-continue\r\n"]),
    st.sampled_from([200, 204, 299, 304, 404, 999]),
    st.lists(st.sampled_from(FIELDS), max_size=4),
    st.lists(st.binary(min_size=0, max_size=6), max_size=3),
)
def test_responses_are_framed_alike(
    method: bytes, version: bytes, extra: bytes, status: int, headers: list[tuple[bytes, bytes]], body: list[bytes]
) -> None:
    target = b"a:1" if method == b"CONNECT" else b"/"
    if method == b"CONNECT" and 200 <= status < 300:
        status = 404
    request = b"%s %s HTTP/%s\r\nHost: a:1\r\n%s\r\n" % (method, target, version, extra)
    agree(lambda engine: respond(engine, request, status, headers, body))


def test_informational_responses_alike() -> None:
    for all_engines in (engines(),):
        outputs = []
        for engine in all_engines:
            engine.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            assert isinstance(engine.next_event(), Request)
            assert engine.waiting_for_100_continue
            outputs.append(
                (engine.send_informational(100, []), engine.send_informational(103, [(b"link", b"</a>")]))
            )
            assert not engine.waiting_for_100_continue
            with pytest.raises(ValueError, match="status_code"):
                engine.send_informational(200, [])
        assert outputs[1:] == [outputs[0]] * (len(outputs) - 1)
        assert outputs[0][0] == b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.mark.parametrize("parser", PARSERS)
def test_a_request_without_a_body_is_complete_as_returned(parser: str) -> None:
    engine = select_engine(parser)(CONFIG)
    engine.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\n")
    request = engine.next_event()
    assert isinstance(request, Request)
    assert not request.body_expected
    assert engine.request_complete  # no END_OF_MESSAGE to wait for
    assert engine.next_event() is Signal.PAUSED  # the pipelined bytes wait for the response
