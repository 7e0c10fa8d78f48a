"""Field sections of HTTP/2 and HTTP/3: the request rules both share once their pseudo-headers are read, the
response fields made fit for the wire, and a response's held head and declared length (`StreamResponse`)."""

from __future__ import annotations

import logging

import pytest
from asgi_core import (
    Config,
    Headers,
    HeadRejected,
    RequestHead,
    StreamResponse,
    informational_head,
    is_head_request,
    request_head,
    response_fields,
    response_head,
)

LOGGER = logging.getLogger("test.stream_fields")


def read(fields: Headers, config: Config | None = None, **pseudo: bytes | None) -> RequestHead:
    values: dict[str, bytes | None] = {"path": b"/p?q", "authority": b"example.org", "protocol": None, **pseudo}
    return request_head(
        fields,
        config or Config(),
        method=b"POST",
        path=values["path"],
        authority=values["authority"],
        protocol=values["protocol"],
        has_host=any(name == b"host" for name, _ in fields),
    )


def test_request_head_joins_cookies_adds_host_and_reads_length_and_expect() -> None:
    head = read(
        [
            (b"content-length", b"12"),
            (b"cookie", b"a=1"),
            (b"expect", b"100-Continue"),
            (b"x-forwarded-proto", b"https"),
            (b"cookie", b"b=2"),
        ]
    )
    assert (head.method, head.path, head.authority, head.protocol) == ("POST", b"/p?q", b"example.org", None)
    assert (head.content_length, head.expect_continue) == (12, True)
    assert head.headers == [
        (b"host", b"example.org"),
        (b"content-length", b"12"),
        (b"cookie", b"a=1; b=2"),  # where the first one stood (RFC 9113 8.2.3, RFC 9114 4.2.1)
        (b"expect", b"100-Continue"),
        (b"x-forwarded-proto", b"https"),
    ]


def test_request_head_keeps_an_explicit_host_and_reads_connect_targets() -> None:
    assert read([(b"host", b"other.org")]).headers == [(b"host", b"other.org")]
    connect = read([], path=None, authority=b"db.internal:5432")
    assert connect.path == b"db.internal:5432"
    assert read([], protocol=b"websocket").protocol == "websocket"


@pytest.mark.parametrize(
    ("fields", "config", "path", "status"),
    [
        ([(b"x", b"v")] * 3, Config(limit_request_fields=2), b"/", 431),
        ([(b"x", b"v" * 100)], Config(limit_request_field_size=50), b"/", 431),
        ([], Config(limit_request_line=64), b"/" + b"a" * 100, 414),
        ([(b"content-length", b"twelve")], Config(), b"/", 400),
    ],
)
def test_request_limits(fields: Headers, config: Config, path: bytes, status: int) -> None:
    with pytest.raises(HeadRejected) as info:
        read(fields, config, path=path)
    assert info.value.status == status


def test_cookies_joined_count_once_against_the_field_limit() -> None:
    head = read([(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x", b"v")], Config(limit_request_fields=2))
    assert len(head.headers) == 3  # the two fields and the host added after the count


def test_is_head_request() -> None:
    assert is_head_request([(b":method", b"HEAD"), (b":path", b"/")])
    assert not is_head_request([(b":method", b"GET"), (b"x", b"HEAD")])


def test_response_fields_are_made_fit_for_the_multiplexed_wire() -> None:
    head = response_head(
        200,
        [
            (b"Content-Type", b"text/html"),
            (b"Connection", b"close"),
            (b"TE", b"trailers"),
            (b"Proxy-Connection", b"x"),
            (b"X-Spaced", b"\tvalue "),
        ],
    )
    assert head == [(b":status", b"200"), (b"content-type", b"text/html"), (b"x-spaced", b"value")]
    assert response_fields([(b"content-type", b"a"), (b"content-type", b"b")]) == [
        (b"content-type", b"a"),
        (b"content-type", b"b"),  # a name seen before takes the quick path, still checked for its value
    ]
    for bad in (
        [(b"bad name", b"v")],
        [(b"", b"v")],
        [(b":status", b"200")],
        [(b"x", b"a\r\nb")],
        [(b"x", b"\0")],
        [(b"x", b"\x07")],
        [(b"x", b"a\x7fb")],
        [(b"content-type", b"a\nb")],
    ):
        with pytest.raises(ValueError, match="invalid"):
            response_fields(bad)


def request(method: str = "GET", *, expect_continue: bool = False) -> RequestHead:
    return RequestHead(
        method=method, path=b"/", protocol=None, headers=[], content_length=None, expect_continue=expect_continue
    )


def test_stream_response_holds_the_head_until_taken() -> None:
    response = StreamResponse(request(), ended=True)
    response.start(200, [(b"Content-Type", b"text/plain")])
    assert response.head == [(b":status", b"200"), (b"content-type", b"text/plain")]
    assert response.take_head() == [(b":status", b"200"), (b"content-type", b"text/plain")]
    assert response.take_head() is None
    assert response.end(None, LOGGER) is None
    with pytest.raises(ValueError, match="invalid header name"):
        response.start(200, [(b"bad name", b"v")])


def test_stream_response_holds_the_body_to_its_content_length() -> None:
    response = StreamResponse(request(), ended=True)
    response.start(200, [(b"content-length", b"5, 5")])
    assert response.take_head() == [(b":status", b"200"), (b"content-length", b"5")]  # sent as the one value
    response.count(3)
    with pytest.raises(ValueError, match="body of 3 bytes for a declared content-length of 5"):
        response.end(None, LOGGER)
    with pytest.raises(ValueError, match="more body than the declared content-length of 5"):
        response.count(3)
    with pytest.raises(ValueError, match="content-length"):
        StreamResponse(request(), ended=True).start(200, [(b"content-length", b"5, 6")])


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_bodyless_responses_declare_no_length_to_hold(method: str, status: int) -> None:
    response = StreamResponse(request(method), ended=True)
    response.start(status, [(b"content-length", b"10")])
    assert response.end(None, LOGGER) is None  # no body, and no error for it
    assert response.whole(status, [(b"content-length", b"10")], 0)[0] == (b":status", str(status).encode())


def test_stream_response_whole_checks_the_length_before_anything_is_sent() -> None:
    response = StreamResponse(request(), ended=True)
    assert response.whole(200, [(b"content-length", b"2")], 2) == [(b":status", b"200"), (b"content-length", b"2")]
    with pytest.raises(ValueError, match="content-length 3 for a body of 2 bytes"):
        response.whole(200, [(b"content-length", b"3")], 2)


def test_expect_continue_is_due_once_while_the_body_is_to_come() -> None:
    response = StreamResponse(request(expect_continue=True), ended=False)
    assert response.continue_due()
    assert not response.continue_due()
    assert not StreamResponse(request(expect_continue=True), ended=True).continue_due()  # no body coming
    started = StreamResponse(request(expect_continue=True), ended=False)
    started.start(200, [])
    assert not started.continue_due()  # the response has begun: the body is not wanted


def test_trailers_made_fit_or_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    response = StreamResponse(request(), ended=True)
    response.start(200, [])
    assert response.end([(b"Grpc-Status", b"0")], LOGGER) == [(b"grpc-status", b"0")]
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        assert response.end([(b"bad name", b"0")], LOGGER) is None
    assert "trailers dropped" in caplog.text


def test_informational_head_or_none_when_it_cannot_be_sent(caplog: pytest.LogCaptureFixture) -> None:
    assert informational_head(103, [(b"Link", b"</a>; rel=preload")], LOGGER) == [
        (b":status", b"103"),
        (b"link", b"</a>; rel=preload"),
    ]
    with caplog.at_level(logging.DEBUG, logger=LOGGER.name):
        assert informational_head(103, [(b"link", b"a\nb")], LOGGER) is None
    assert "informational response dropped" in caplog.text
