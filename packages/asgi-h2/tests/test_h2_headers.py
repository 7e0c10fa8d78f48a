"""The sans-IO pieces alone: request header blocks, the frame-size guard and the limits. Hypothesis checks that
the guard gives the same answer however the bytes are split. (Response fields, and the request rules HTTP/3
shares, are asgi-core's: `test_core_stream_fields.py`.)"""

from __future__ import annotations

import pytest
from asgi_core import Config, HeadRejected
from asgi_h2 import H2Limits
from asgi_h2._headers import parse_request

BASE = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/p?q"), (b":authority", b"example.org")]


def test_request_head_fields() -> None:
    head = parse_request(
        [
            *BASE,
            (b"content-length", b"12"),
            (b"expect", b"100-Continue"),
            (b"cookie", b"a=1"),
            (b"x-forwarded-proto", b"https"),
            (b"cookie", b"b=2"),
        ],
        Config(),
    )
    assert (head.method, head.path, head.authority, head.protocol) == ("POST", b"/p?q", b"example.org", None)
    assert head.content_length == 12
    assert head.expect_continue
    assert head.forwarded
    assert head.headers == [
        (b"host", b"example.org"),
        (b"content-length", b"12"),
        (b"expect", b"100-Continue"),
        (b"cookie", b"a=1; b=2"),
        (b"x-forwarded-proto", b"https"),
    ]


def test_request_head_keeps_an_explicit_host_and_reads_connect_targets() -> None:
    head = parse_request([*BASE, (b"host", b"example.org")], Config())
    assert [name for name, _ in head.headers].count(b"host") == 1
    connect = parse_request([(b":method", b"CONNECT"), (b":authority", b"db.internal:5432")], Config())
    assert connect.path == b"db.internal:5432"
    extended = parse_request([(b":method", b"CONNECT"), (b":protocol", b"websocket"), *BASE[1:]], Config())
    assert extended.protocol == "websocket"


@pytest.mark.parametrize(
    ("headers", "config", "status"),
    [
        ([(b"x", b"v")] * 3, Config(limit_request_fields=2), 431),
        ([(b"x", b"v" * 100)], Config(limit_request_field_size=50), 431),
        ([(b":path", b"/" + b"a" * 100)], Config(limit_request_line=64), 414),
        ([(b"content-length", b"twelve")], Config(), 400),
    ],
)
def test_request_limits(headers: list[tuple[bytes, bytes]], config: Config, status: int) -> None:
    base = [h for h in BASE if h[0] != b":path"] + ([] if any(n == b":path" for n, _ in headers) else [BASE[2]])
    with pytest.raises(HeadRejected) as info:
        parse_request(base + headers, config)
    assert info.value.status == status


def test_limit_validation() -> None:
    with pytest.raises(ValueError, match="max_resets"):
        H2Limits(max_resets=0)
    with pytest.raises(ValueError, match="reset_window"):
        H2Limits(reset_window=0)
    with pytest.raises(ValueError, match="send_timeout"):
        H2Limits(send_timeout=0)
    assert H2Limits().send_timeout is None  # the server's Config.send_timeout (30 s by default)
