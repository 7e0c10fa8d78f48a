"""HTTP1Protocol with no network: bytes in through an in-memory transport, bytes out, in the h11 test style.

Every fixture is fed whole and one byte at a time and must give the same response; random bytes may only ever
give responses or nothing, then a clean close; malformed and smuggling-shaped requests get their 4xx and a
close without reaching the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext, UpgradeRequest
from asgi_http1 import HTTP1Protocol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

QUIET = Config(date_header=False, server_header=False)
App = Callable[[Scope, Receive, Send], Awaitable[None]]


# Every test here runs once per head parser: h11 (the reference) and httptools (the fast one), which must behave
# exactly alike. The parser is chosen through `ASGI_HTTP1_PARSER`, as a user would force it. Module scope:
# Hypothesis tests may not depend on function-scoped fixtures.
@pytest.fixture(scope="module", params=["h11", "httptools"], autouse=True)
def http1_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASGI_HTTP1_PARSER", request.param)
        yield request.param


class MemoryTransport:
    """An asyncio transport with no socket: what the client sent waits in `inbox` while reading is paused."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.protocol: asyncio.Protocol | None = None
        self.output = bytearray()
        self.late_writes = bytearray()
        self.closed = False
        self.lost = False
        self.reading = True
        self.inbox: list[bytes] = []
        self.eof_pending = False
        self.extra: dict[str, Any] = {"peername": ("192.0.2.1", 5555), "sockname": ("127.0.0.1", 8000)}

    def write(self, data: bytes | bytearray | memoryview, /) -> None:
        (self.late_writes if self.closed else self.output).extend(data)

    def writelines(self, list_of_data: list[bytes], /) -> None:
        for data in list_of_data:
            self.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.call_soon(self._lose)

    def _lose(self) -> None:
        self.lost = True
        assert self.protocol is not None
        self.protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        self._loop.call_soon(self.pump)

    def get_extra_info(self, name: str, default: Any = None, /) -> Any:
        return self.extra.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol | None:
        return self.protocol

    def pump(self) -> None:
        assert self.protocol is not None
        while self.reading and not self.closed and self.inbox:
            self.protocol.data_received(self.inbox.pop(0))
        if self.reading and not self.closed and not self.inbox and self.eof_pending:
            self.eof_pending = False
            if not self.protocol.eof_received():
                self.close()


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        return dict(self.headers).get(name)


def _parse_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    fields = []
    for line in block.split(b"\r\n"):
        if line:
            name, colon, value = line.partition(b":")
            assert colon, line
            fields.append((name.lower(), value.strip()))
    return fields


def parse_responses(data: bytes, *, bodyless: bool = False) -> list[Response]:
    """Split a byte stream into responses (Content-Length, chunked, or read-until-close framing)."""
    responses: list[Response] = []
    rest = bytes(data)
    while rest:
        head, blank, rest = rest.partition(b"\r\n\r\n")
        assert blank, f"incomplete response head {head!r}"
        status_line, _, header_block = head.partition(b"\r\n")
        version, status_text, _reason = [*status_line.split(b" ", 2), b""][:3]
        assert version == b"HTTP/1.1", status_line
        response = Response(int(status_text), _parse_fields(header_block))
        length = response.header(b"content-length")
        if bodyless or response.status < 200 or response.status in (204, 304):
            pass
        elif response.header(b"transfer-encoding") == b"chunked":
            body = bytearray()
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    trailer_block, blank, rest = (
                        rest.partition(b"\r\n\r\n")
                        if not rest.startswith(b"\r\n")
                        else (
                            b"",
                            b"\r\n",
                            rest[2:],
                        )
                    )
                    assert blank, "unterminated chunked body"
                    response.trailers = _parse_fields(trailer_block)
                    break
                body += rest[:size]
                assert rest[size : size + 2] == b"\r\n"
                rest = rest[size + 2 :]
            response.body = bytes(body)
        elif length is not None:
            response.body, rest = rest[: int(length)], rest[int(length) :]
            assert len(response.body) == int(length), "truncated body"
        else:
            response.body, rest = rest, b""
        responses.append(response)
    return responses


@dataclass
class Outcome:
    transport: MemoryTransport
    protocol: HTTP1Protocol
    context: ServerContext
    errors: list[dict[str, Any]]

    @property
    def responses(self) -> list[Response]:
        return parse_responses(bytes(self.transport.output))

    @property
    def statuses(self) -> list[int]:
        return [response.status for response in self.responses]


async def settle(rounds: int = 40) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def converse_async(
    app: App,
    chunks: list[bytes],
    *,
    config: Config = QUIET,
    eof: bool = False,
    registry: Registry | None = None,
    rounds: int = 40,
) -> Outcome:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    context = ServerContext(app=app, config=config, registry=registry)
    protocol = HTTP1Protocol(context)
    transport = MemoryTransport(loop)
    transport.protocol = protocol
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for chunk in chunks:
        transport.inbox.append(chunk)
        transport.pump()
        await settle(rounds)
    if eof:
        transport.eof_pending = True
        transport.pump()
    await settle(rounds)
    return Outcome(transport, protocol, context, errors)


def converse(app: App, chunks: list[bytes], **kwargs: Any) -> Outcome:
    async def main() -> Outcome:
        outcome = await converse_async(app, chunks, **kwargs)
        if not outcome.transport.closed:
            outcome.transport.close()  # end the test's connection; apps see a disconnect
        await settle()
        return outcome

    return asyncio.run(main())


class EchoApp:
    """Reads the whole body, then answers with what it saw; records every request."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        messages = []
        while True:
            message = await receive()
            messages.append(message["type"])
            if message["type"] != "http.request":
                break
            body += message["body"]
            if not message.get("more_body"):
                break
        # How many messages the body came in depends on how the bytes arrived; how it ended does not.
        self.seen.append(
            {"method": scope["method"], "path": scope["path"], "body": bytes(body), "end": messages[-1]}
        )
        if messages[-1] == "http.disconnect":
            return
        reply = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} {len(body)}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": reply + b"|" + bytes(body)})


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# ---- whole vs one byte at a time ---------------------------------------------------------------------------

GET = b"GET /a%20b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
POST = b"POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello world"
CHUNKED = (
    b"POST /chunked HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: yes\r\n\r\n"
)
FIXTURES = {
    "get": GET,
    "post": POST,
    "chunked": CHUNKED,
    "pipelined": GET + POST + CHUNKED,
    "http10": b"GET /old HTTP/1.0\r\n\r\n",
    "continue": POST.replace(b"Content-Length", b"Expect: 100-continue\r\nContent-Length"),
    "options-asterisk": b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "absolute-form": b"GET http://example.com/abs?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "good-then-bad": GET + b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
    "close": b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + GET,
}


@pytest.mark.parametrize("name", list(FIXTURES))
def test_same_response_whole_and_byte_by_byte(name: str) -> None:
    data = FIXTURES[name]
    whole_app, bytewise_app = EchoApp(), EchoApp()
    whole = converse(whole_app, [data], eof=True)
    split = converse(bytewise_app, bytewise(data), eof=True, rounds=4)
    # 100 Continue depends on timing by design (sent only if the app waits for a body not yet received).
    final = [r for r in whole.responses if r.status != 100]
    assert final == [r for r in split.responses if r.status != 100]
    assert final, "no response at all"
    assert whole_app.seen == bytewise_app.seen
    for outcome in (whole, split):
        assert outcome.transport.closed
        assert not outcome.errors
        assert not outcome.transport.late_writes


def test_pipelined_requests_are_answered_in_order() -> None:
    app = EchoApp()
    outcome = converse(app, [FIXTURES["pipelined"]])
    assert [r.body.split(b"|")[0] for r in outcome.responses] == [
        b"GET /a b x=1 0",
        b"POST /submit  11",
        b"POST /chunked  11",
    ]
    assert [seen["body"] for seen in app.seen] == [b"", b"hello world", b"hello world"]


def test_a_request_with_its_body_and_the_next_request_in_one_read_are_both_served() -> None:
    # The engine cuts a request that came whole in one read straight from that read; what follows it in
    # the same read must still be the next request.
    app = EchoApp()
    outcome = converse(
        app,
        [
            b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /second HTTP/1.1\r\nHost: a\r\n\r\n"
        ],
    )
    assert [r.body.split(b"|")[0] for r in outcome.responses] == [b"POST /first  5", b"GET /second  0"]
    assert [seen["body"] for seen in app.seen] == [b"hello", b""]


# ---- random input --------------------------------------------------------------------------------------------

FRAGMENTS = [
    b"GET / HTTP/1.1\r\n",
    b"POST /p HTTP/1.1\r\n",
    b"Host: a\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"\r\n",
    b"3\r\nabc\r\n",
    b"0\r\n\r\n",
    b"abc",
    b" ",
    b"\n",
    b"\r",
    b"\x00",
    b":",
]
garbage = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=14).map(b"".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage, st.integers(min_value=1, max_value=64))
def test_random_bytes_yield_responses_or_nothing_then_a_clean_close(data: bytes, piece: int) -> None:
    app = EchoApp()
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]
    outcome = converse(app, chunks, eof=True, rounds=8)
    assert not outcome.errors, outcome.errors
    assert outcome.transport.closed, "after EOF the connection must be closed"
    assert not outcome.transport.late_writes
    responses = outcome.responses  # parses: only whole, well-formed responses went out
    final = [r for r in responses if r.status != 100]
    for response in final[:-1]:
        assert response.status == 200  # an error response is always the last one
    if final and final[-1].status >= 400:
        assert final[-1].header(b"connection") == b"close"
        assert final[-1].status in (400, 408, 413, 414, 431, 501, 505)
    assert len([r for r in final if r.status == 200]) == len(
        [seen for seen in app.seen if seen["end"] == "http.request"]
    )


# ---- malformed requests ----------------------------------------------------------------------------------------

H = b"Host: example.com\r\n"
MALFORMED = {
    "cl-and-te": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-and-cl": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "duplicate-cl": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "cl-list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello",
    "conflicting-cl": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "negative-cl": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -5\r\n\r\nhello",
    "plus-cl": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello",
    "hex-cl": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello",
    "spaced-cl": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5 5\r\n\r\nhello",
    "obs-fold-space": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n",
    "obs-fold-tab": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n",
    "fold-first-header": b"GET / HTTP/1.1\r\n X-A: b\r\n" + H + b"\r\n",
    "bare-lf": b"GET / HTTP/1.1\n" + b"Host: example.com\n\n",
    "bare-lf-one-line": b"GET / HTTP/1.1\r\nHost: example.com\nX-A: b\r\n\r\n",
    "bare-cr-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n",
    "bare-cr-line": b"GET / HTTP/1.1\rHost: example.com\r\n\r\n",
    "nul-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n",
    "nul-target": b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n",
    "nul-name": b"GET / HTTP/1.1\r\n" + H + b"X\x00A: b\r\n\r\n",
    "space-in-name": b"GET / HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n",
    "paren-in-name": b"GET / HTTP/1.1\r\n" + H + b"X(A): b\r\n\r\n",
    "empty-name": b"GET / HTTP/1.1\r\n" + H + b": b\r\n\r\n",
    "bad-method-char": b"G@T / HTTP/1.1\r\n" + H + b"\r\n",
    "bad-method-space": b"GE T / HTTP/1.1\r\n" + H + b"\r\n",
    "no-method": b" / HTTP/1.1\r\n" + H + b"\r\n",
    "no-host": b"GET / HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\n" + H + b"Host: other\r\n\r\n",
    "te-in-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "http09": b"GET /\r\n\r\n",
    "non-ascii-target": b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n",
    "asterisk-not-options": b"GET * HTTP/1.1\r\n" + H + b"\r\n",
    "authority-not-connect": b"GET example.com:80 HTTP/1.1\r\n" + H + b"\r\n",
    "connect-origin-form": b"CONNECT /path HTTP/1.1\r\n" + H + b"\r\n",
    "relative-target": b"GET a/b HTTP/1.1\r\n" + H + b"\r\n",
    "host-with-space": b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n",
    "host-with-path": b"GET / HTTP/1.1\r\nHost: example.com/evil\r\n\r\n",
    "host-with-userinfo": b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_gets_400_and_close_and_never_reaches_the_app(name: str) -> None:
    for chunks in ([MALFORMED[name]], bytewise(MALFORMED[name])):
        app = EchoApp()
        outcome = converse(app, chunks, rounds=2)
        assert outcome.statuses == [400], (name, bytes(outcome.transport.output))
        assert outcome.responses[0].header(b"connection") == b"close"
        assert outcome.transport.closed
        assert app.seen == []
        assert not outcome.errors
        assert not outcome.transport.late_writes


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
        (b"GET / HTTP/3.1\r\n" + H + b"\r\n", 505),
    ],
)
def test_unsupported_framing_and_versions(request_bytes: bytes, status: int) -> None:
    app = EchoApp()
    outcome = converse(app, [request_bytes])
    assert outcome.statuses == [status]
    assert outcome.transport.closed
    assert app.seen == []


@pytest.mark.parametrize(
    "host",
    [
        b"example.com",
        b"example.com:8080",
        b"192.0.2.1:80",
        b"[2001:db8::1]:443",
        b"[::1]",
        b"",
        b"xn--bcher-kva.example",
    ],
)
def test_valid_host_values(host: bytes) -> None:
    outcome = converse(EchoApp(), [b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"])
    assert outcome.statuses == [200]


def test_http_1_x_minor_versions_are_served_as_1_1() -> None:
    app = EchoApp()
    outcome = converse(app, [b"GET / HTTP/1.2\r\n" + H + b"\r\n"])
    assert outcome.statuses == [200]


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\nhello\n0\n\n\r\n",
        b"5\r\nhello\r\n0\r\nBad Trailer: x\r\n\r\n",
    ],
)
def test_bad_chunked_body_gets_400_and_the_app_only_a_disconnect(body: bytes) -> None:
    app = EchoApp()
    head = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    outcome = converse(app, [head, body])
    assert outcome.statuses == [400]
    assert outcome.transport.closed
    assert [seen["end"] for seen in app.seen] == ["http.disconnect"]


def test_a_good_request_before_a_bad_one_is_answered() -> None:
    app = EchoApp()
    outcome = converse(app, [GET + MALFORMED["cl-and-te"]])
    assert outcome.statuses == [200, 400]
    assert len(app.seen) == 1


# ---- limits ----------------------------------------------------------------------------------------------------


LIMITED = Config(date_header=False, limit_request_line=64, limit_request_fields=4, limit_request_field_size=64)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 60 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
        (b"GET /" + b"a" * 200, 414),  # no need to wait for the end of an over-long line
        (b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(4)) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 60 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 2000, 431),  # an endless head is cut, not buffered
    ],
)
def test_head_limits(request_bytes: bytes, status: int) -> None:
    app = EchoApp()
    outcome = converse(app, [request_bytes], config=LIMITED)
    assert outcome.statuses == [status]
    assert outcome.transport.closed
    assert app.seen == []


def test_limits_at_the_boundary_pass() -> None:
    app = EchoApp()
    line = b"GET /" + b"a" * (64 - len(b"GET / HTTP/1.1")) + b" HTTP/1.1\r\n"
    headers = H + b"".join(b"X-%d: v\r\n" % i for i in range(3))
    outcome = converse(app, [line + headers + b"\r\n"], config=LIMITED)
    assert outcome.statuses == [200]


def test_body_limit_413_by_content_length_and_while_streaming() -> None:
    config = Config(date_header=False, max_request_body_size=10)
    app = EchoApp()
    big = converse(app, [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\nhello world"], config=config)
    assert big.statuses == [413]
    assert big.transport.closed
    assert app.seen == []
    chunked = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    streamed = converse(app, [chunked, b"6\r\nhello \r\n", b"5\r\nworld\r\n0\r\n\r\n"], config=config)
    assert streamed.statuses == [413]
    assert streamed.transport.closed
    ok = converse(EchoApp(), [chunked + b"5\r\nhello\r\n0\r\n\r\n"], config=config)
    assert ok.statuses == [200]


# ---- response shapes ---------------------------------------------------------------------------------------------


def responder(*messages: dict[str, Any]) -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app


START = {"type": "http.response.start", "status": 200, "headers": []}


def test_streaming_response_is_chunked_for_1_1_and_close_delimited_for_1_0() -> None:
    app = responder(
        START,
        {"type": "http.response.body", "body": b"one ", "more_body": True},
        {"type": "http.response.body", "body": b"two"},
    )
    eleven = converse(app, [GET])
    (response,) = eleven.responses
    assert response.header(b"transfer-encoding") == b"chunked"
    assert response.body == b"one two"
    ten = converse(app, [b"GET / HTTP/1.0\r\n\r\n"])
    raw = bytes(ten.transport.output)
    assert b"transfer-encoding" not in raw.lower()
    assert b"content-length" not in raw.lower()
    assert raw.endswith(b"\r\n\r\none two")
    assert ten.responses[0].header(b"connection") == b"close"


def test_trailers_only_when_the_client_asked_for_them() -> None:
    app = responder(
        {**START, "trailers": True},
        {"type": "http.response.body", "body": b"data"},
        {"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]},
    )
    seen: list[Scope] = []

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await app(scope, receive, send)

    with_te = converse(recording, [b"GET / HTTP/1.1\r\n" + H + b"TE: trailers\r\n\r\n"])
    assert with_te.responses[0].trailers == [(b"x-checksum", b"abc")]
    assert with_te.responses[0].body == b"data"
    assert "http.response.trailers" in seen[0]["extensions"]
    without = converse(recording, [GET])
    assert without.responses[0].trailers == []
    assert without.responses[0].body == b"data"
    assert "http.response.trailers" not in seen[1]["extensions"]


def test_request_trailers_are_kept_apart_from_headers() -> None:
    scopes: list[Scope] = []
    app = EchoApp()

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await app(scope, receive, send)

    converse(recording, [CHUNKED])
    assert b"x-trailer" not in dict(scopes[0]["headers"])
    assert app.seen[0]["body"] == b"hello world"


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_statuses_and_head(status: int) -> None:
    app = responder({**START, "status": status}, {"type": "http.response.body", "body": b"dropped"})
    outcome = converse(app, [GET + GET])
    assert outcome.statuses == [status, status]
    assert b"dropped" not in outcome.transport.output
    head = converse(
        responder(START, {"type": "http.response.body", "body": b"12345"}), [GET.replace(b"GET", b"HEAD")]
    )
    raw = bytes(head.transport.output)
    assert b"content-length: 5\r\n" in raw
    assert raw.endswith(b"\r\n\r\n")


def test_reset_content_sends_no_body_and_a_zero_length() -> None:
    declared = {**START, "status": 205, "headers": [(b"content-length", b"7")]}
    outcome = converse(responder(declared, {"type": "http.response.body", "body": b"dropped"}), [GET + GET])
    assert outcome.statuses == [205, 205]  # the second answer is read right after the first: framing held
    raw = bytes(outcome.transport.output)
    assert b"dropped" not in raw
    assert raw.count(b"content-length: 0\r\n") == 2
    assert b"content-length: 7" not in raw


def test_early_hints_for_1_1_clients_only() -> None:
    app = responder(
        {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]},
        START,
        {"type": "http.response.body", "body": b"x"},
    )
    eleven = converse(app, [GET])
    assert eleven.statuses == [103, 200]
    assert eleven.responses[0].headers == [(b"link", b"</a.css>; rel=preload")]
    ten = converse(app, [b"GET / HTTP/1.0\r\n\r\n"])
    assert not bytes(ten.transport.output).startswith(b"HTTP/1.1 103")


@pytest.mark.parametrize(
    "start",
    [
        {"type": "http.response.start", "status": "200"},
        {"type": "http.response.start", "status": 1000},
        {"type": "http.response.start", "status": 200, "headers": [("content-type", "text/plain")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"x-bad", b"a\r\nInjected: yes")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"x")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"transfer-encoding", b"gzip")]},
        {"type": "http.response.body", "body": b"no start"},
    ],
)
def test_invalid_app_message_gives_the_client_a_500(start: dict[str, Any]) -> None:
    outcome = converse(responder(start, {"type": "http.response.body", "body": b"x"}), [GET])
    assert outcome.statuses == [500]
    assert outcome.responses[0].body == b"Internal Server Error"
    assert b"Injected" not in outcome.transport.output
    assert outcome.transport.closed
    assert not outcome.errors


@pytest.mark.parametrize("body", [b"short", b"much too long"])
def test_body_not_matching_the_declared_content_length_cuts_the_connection(body: bytes) -> None:
    app = responder(
        {**START, "headers": [(b"content-length", b"8")]}, {"type": "http.response.body", "body": body}
    )
    outcome = converse(app, [GET + GET], rounds=10)
    assert outcome.transport.lost  # closed, not left hanging with a half-sent body
    raw = bytes(outcome.transport.output)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.count(b"HTTP/1.1") == 1  # the connection was cut: the pipelined request is not answered
    assert len(raw.partition(b"\r\n\r\n")[2]) < 8
    assert not outcome.errors


def test_app_error_after_the_response_finished_leaves_the_next_request_alone() -> None:
    calls: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(1)
        await send(START)
        await send({"type": "http.response.body", "body": b"ok"})
        if len(calls) == 1:
            raise RuntimeError("background failure")

    outcome = converse(app, [GET + GET])
    assert outcome.statuses == [200, 200]


# ---- 100-continue, keep-alive, disconnects -----------------------------------------------------------------------


CONTINUE_HEAD = b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_100_continue_is_sent_only_when_the_app_reads() -> None:
    async def main() -> None:
        go = asyncio.Event()
        app = EchoApp()

        async def waiting(scope: Scope, receive: Receive, send: Send) -> None:
            await go.wait()
            await app(scope, receive, send)

        outcome = await converse_async(waiting, [CONTINUE_HEAD])
        assert outcome.transport.output == b""  # the app has not asked for the body yet
        go.set()
        await settle()
        assert outcome.transport.output == b"HTTP/1.1 100 Continue\r\n\r\n"
        outcome.transport.inbox.append(b"hello")
        outcome.transport.pump()
        await settle()
        assert outcome.statuses == [100, 200]
        assert app.seen[0]["body"] == b"hello"
        outcome.transport.close()
        await settle()

    asyncio.run(main())


def test_no_100_continue_when_the_app_answers_without_reading() -> None:
    async def main() -> None:
        app = responder({**START, "status": 417}, {"type": "http.response.body", "body": b"no"})
        outcome = await converse_async(app, [CONTINUE_HEAD])
        assert outcome.statuses == [417]
        # Whether the client sends the body now is its choice: closing keeps both sides in agreement.
        assert outcome.responses[0].header(b"connection") == b"close"
        assert outcome.transport.closed

    asyncio.run(main())


def test_unread_body_is_read_and_dropped_and_the_connection_goes_on() -> None:
    app = responder(START, {"type": "http.response.body", "body": b"early"})
    head = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n"
    outcome = converse(app, [head, b"01234", b"56789" + GET])
    assert outcome.statuses == [200, 200]
    assert outcome.responses[0].header(b"connection") is None


def test_unread_body_is_drained_within_the_keep_alive_timeout() -> None:
    async def main() -> None:
        app = responder(START, {"type": "http.response.body", "body": b"early"})
        config = Config(date_header=False, keep_alive_timeout=0.05)
        outcome = await converse_async(
            app, [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 100\r\n\r\n"], config=config
        )
        assert outcome.statuses == [200]
        await asyncio.sleep(0.2)
        assert outcome.transport.closed  # a client that never sends the announced body is not waited for forever

    asyncio.run(main())


def test_keep_alive_timeout_closes_an_idle_connection() -> None:
    async def main() -> None:
        config = Config(date_header=False, keep_alive_timeout=0.05, header_timeout=5)
        outcome = await converse_async(EchoApp(), [GET], config=config)
        assert outcome.statuses == [200]
        assert not outcome.transport.closed
        await asyncio.sleep(0.15)
        assert outcome.transport.closed
        assert outcome.protocol not in outcome.context.connections

    asyncio.run(main())


def test_head_deadline_408_for_a_partial_head_and_silent_close_for_nothing() -> None:
    async def main() -> None:
        config = Config(date_header=False, header_timeout=0.05)
        partial = await converse_async(EchoApp(), [b"GET / HTTP/1.1\r\nHost"], config=config)
        silent = await converse_async(EchoApp(), [], config=config)
        await asyncio.sleep(0.15)
        assert partial.statuses == [408]
        assert partial.transport.closed
        assert silent.transport.closed
        assert silent.transport.output == b""

    asyncio.run(main())


def test_client_disconnect_mid_body_gives_the_app_http_disconnect() -> None:
    async def main() -> None:
        app = EchoApp()
        outcome = await converse_async(app, [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nabc"])
        outcome.transport.close()  # the client vanished
        await settle()
        assert app.seen[0]["end"] == "http.disconnect"
        assert app.seen[0]["body"] == b"abc"
        assert outcome.transport.output == b""

    asyncio.run(main())


def test_half_close_after_a_complete_request_still_gets_the_response() -> None:
    app = EchoApp()
    outcome = converse(app, [POST], eof=True)
    assert outcome.statuses == [200]
    assert outcome.transport.closed


def test_half_close_before_the_app_answers_still_gets_the_response() -> None:
    async def main() -> None:
        go = asyncio.Event()
        app = EchoApp()

        async def waiting(scope: Scope, receive: Receive, send: Send) -> None:
            await go.wait()
            await app(scope, receive, send)

        outcome = await converse_async(waiting, [POST], eof=True)
        assert not outcome.transport.closed
        go.set()
        await settle()
        assert outcome.statuses == [200]
        assert app.seen[0]["body"] == b"hello world"
        assert outcome.transport.closed

    asyncio.run(main())


def test_eof_mid_request_is_a_400_for_a_waiting_app() -> None:
    app = EchoApp()
    outcome = converse(app, [b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nabc"], eof=True)
    assert outcome.statuses == [400]
    assert app.seen[0]["end"] == "http.disconnect"


def test_request_body_backpressure_pauses_and_resumes_reading() -> None:
    async def main() -> None:
        release = asyncio.Event()
        received = bytearray()

        async def slow(scope: Scope, receive: Receive, send: Send) -> None:
            await release.wait()
            while True:
                message = await receive()
                received.extend(message.get("body", b""))
                if not message.get("more_body"):
                    break
            await send(START)
            await send({"type": "http.response.body", "body": b"done"})

        config = Config(date_header=False, request_body_buffer=1024)
        head = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 8192\r\n\r\n"
        outcome = await converse_async(slow, [head] + [b"x" * 512] * 16, config=config)
        assert not outcome.transport.reading  # the app is not reading: neither are we
        assert outcome.transport.inbox  # what the client sent is still in the kernel, not in our memory
        release.set()
        await settle(200)
        assert len(received) == 8192
        assert outcome.statuses == [200]
        outcome.transport.close()
        await settle()

    asyncio.run(main())


def test_drain_closes_idle_connections_and_finishes_in_flight_ones() -> None:
    async def main() -> None:
        go = asyncio.Event()

        async def slow(scope: Scope, receive: Receive, send: Send) -> None:
            await go.wait()
            await send(START)
            await send({"type": "http.response.body", "body": b"last"})

        go.set()
        # Answered, now idle between requests.
        idle = await converse_async(slow, [GET], config=Config(date_header=False, drain_idle_grace=0.05))
        go.clear()
        busy = await converse_async(slow, [GET])
        fresh = await converse_async(slow, [], config=Config(date_header=False, header_timeout=0.05))
        for outcome in (idle, busy, fresh):
            outcome.context.drain_connections()
        await settle()
        # The idle one's client may be sending its next request right now: it gets the drain's grace first.
        assert not idle.transport.closed
        assert not busy.transport.closed
        # A just-accepted connection may have a request on the wire: it keeps its head deadline.
        assert not fresh.transport.closed
        go.set()
        await settle()
        assert busy.statuses == [200]
        assert busy.responses[0].header(b"connection") == b"close"
        assert busy.transport.closed
        await asyncio.sleep(0.1)
        assert fresh.transport.closed
        assert idle.transport.closed

    asyncio.run(main())


def test_scope_of_an_http1_request() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await responder(START, {"type": "http.response.body"})(scope, receive, send)

    request = b"GET /caf%C3%A9?q=%20 HTTP/1.1\r\nHost: example.com\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n"
    converse(app, [request], config=Config(root_path="/api"))
    scope = scopes[0]
    assert (scope["http_version"], scope["method"], scope["scheme"]) == ("1.1", "GET", "http")
    assert (scope["path"], scope["raw_path"], scope["root_path"]) == ("/api/caf\u00e9", b"/api/caf%C3%A9", "/api")
    assert scope["query_string"] == b"q=%20"
    assert scope["headers"] == [(b"host", b"example.com"), (b"x-dup", b"1"), (b"x-dup", b"2")]
    assert scope["client"] == ("192.0.2.1", 5555)
    assert scope["server"] == ("127.0.0.1", 8000)
    assert "http.response.early_hint" in scope["extensions"]


@pytest.mark.parametrize(
    ("peer", "client"), [("127.0.0.1", ("203.0.113.9", 0)), ("192.0.2.1", ("192.0.2.1", 5555))]
)
def test_proxy_headers_only_from_a_trusted_peer(peer: str, client: tuple[str, int]) -> None:
    async def main() -> list[Scope]:
        scopes: list[Scope] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scopes.append(scope)
            await responder(START, {"type": "http.response.body"})(scope, receive, send)

        loop = asyncio.get_running_loop()
        transport = MemoryTransport(loop)
        transport.extra["peername"] = (peer, 5555)
        protocol = HTTP1Protocol(ServerContext(app=app, config=QUIET))
        transport.protocol = protocol
        protocol.connection_made(transport)  # type: ignore[arg-type]
        headers = b"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
        transport.inbox.append(b"GET / HTTP/1.1\r\n" + H + headers + b"\r\n")
        transport.pump()
        await settle()
        transport.close()
        await settle()
        return scopes

    (scope,) = asyncio.run(main())
    assert scope["client"] == client
    assert scope["scheme"] == ("https" if peer == "127.0.0.1" else "http")


def test_pipelined_flood_pauses_reading_until_the_response_is_done() -> None:
    async def main() -> None:
        go = asyncio.Event()

        async def slow(scope: Scope, receive: Receive, send: Send) -> None:
            await go.wait()
            await responder(START, {"type": "http.response.body", "body": b"ok"})(scope, receive, send)

        config = Config(
            date_header=False, limit_request_line=100, limit_request_fields=2, limit_request_field_size=100
        )
        flood = [GET] + [GET] * 20  # far more parked bytes than one request head may take
        outcome = await converse_async(slow, flood, config=config)
        assert not outcome.transport.reading
        go.set()
        await settle(400)
        assert outcome.statuses == [200] * 21
        assert outcome.transport.reading
        outcome.transport.close()
        await settle()

    asyncio.run(main())


def test_connect_is_refused_with_501_before_the_app() -> None:
    # ASGI cannot carry the tunnel a 2xx answer would open; the server refuses CONNECT itself (never a 500).
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await responder(START, {"type": "http.response.body", "body": b"tunnel?"})(scope, receive, send)

    outcome = converse(app, [b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"])
    assert outcome.statuses == [501]
    assert outcome.transport.closed
    assert not scopes
    assert not outcome.errors


# ---- upgrade hand-off -----------------------------------------------------------------------------------------


class TakeoverProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.received = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received.extend(data)


class FakeUpgrade:
    token = "fake-proto"

    def __init__(self, *, accept: bool = True) -> None:
        self.accept = accept
        self.requests: list[UpgradeRequest] = []
        self.protocols: list[TakeoverProtocol] = []

    def accepts(self, request: UpgradeRequest) -> bool:
        self.requests.append(request)
        return self.accept

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        protocol = TakeoverProtocol()
        self.protocols.append(protocol)
        return protocol


UPGRADE = b"GET /chat?room=1 HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: Fake-Proto\r\n\r\n"


def test_upgrade_hands_the_transport_and_leftover_bytes_to_the_handler() -> None:
    async def main() -> None:
        handler = FakeUpgrade()
        registry = Registry(discover=False)
        registry.add_upgrade(handler)
        app = EchoApp()
        outcome = await converse_async(app, [UPGRADE + b"\x00\x01first frame"], registry=registry)
        (request,) = handler.requests
        assert (request.method, request.target, request.http_version) == ("GET", b"/chat?room=1", "1.1")
        assert (b"upgrade", b"Fake-Proto") in request.headers
        assert request.leftover == b"\x00\x01first frame"
        (taken,) = handler.protocols
        assert taken.transport is cast("Any", outcome.transport)
        assert outcome.transport.protocol is taken
        assert taken.received == b"\x00\x01first frame"
        outcome.transport.inbox.append(b"more")
        outcome.transport.pump()
        assert taken.received.endswith(b"more")
        assert outcome.transport.output == b""  # HTTP/1.1 wrote nothing: the new protocol answers
        assert outcome.protocol not in outcome.context.connections
        assert app.seen == []
        await asyncio.sleep(0.05)
        assert not outcome.transport.closed  # no HTTP/1.1 timer fires on the taken-over connection

    asyncio.run(main())


@pytest.mark.parametrize("registered", [False, True])
def test_unregistered_or_declined_upgrade_is_served_as_plain_http(registered: bool) -> None:
    registry = Registry(discover=False)
    handler = FakeUpgrade(accept=False)
    if registered:
        registry.add_upgrade(handler)
    app = EchoApp()
    outcome = converse(app, [UPGRADE + GET], registry=registry)
    assert outcome.statuses == [200, 200]
    assert [seen["path"] for seen in app.seen] == ["/chat", "/a b"]
    assert len(handler.requests) == int(registered)
    assert handler.protocols == []


@pytest.mark.parametrize("offer", [b"unknown/1, Fake-Proto", b"Fake-Proto/2, unknown", b"fake-proto"])
def test_upgrade_picks_the_first_registered_protocol_from_the_offered_list(offer: bytes) -> None:
    async def main() -> None:
        handler = FakeUpgrade()
        registry = Registry(discover=False)
        registry.add_upgrade(handler)
        request = UPGRADE.replace(b"Upgrade: Fake-Proto", b"Upgrade: " + offer)
        outcome = await converse_async(EchoApp(), [request], registry=registry)
        assert len(handler.protocols) == 1
        assert outcome.transport.output == b""

    asyncio.run(main())


@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-at-a-time"])
def test_request_body_reaches_the_app_as_bytes(split: bool) -> None:
    """ASGI's `body` is a byte string: h11 hands its body data over as bytearray, which must not leak through."""
    types: list[type] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            types.append(type(message.get("body")))
            if not message.get("more_body"):
                break
        await send(START)
        await send({"type": "http.response.body", "body": b"ok"})

    request = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    outcome = converse(app, bytewise(request) if split else [request])
    assert outcome.statuses == [200]
    assert types
    assert set(types) == {bytes}
