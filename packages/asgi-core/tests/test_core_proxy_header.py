"""The PROXY protocol header parser: v1 and v2, whole and byte by byte, and garbage."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from asgi_core._proxy import ProxyHeader, ProxyHeaderError, ProxyPeek, parse_proxy_header
from hypothesis import given
from hypothesis import strategies as st

REST = b"GET / HTTP/1.1\r\n\r\n"


def v2(command: int, family: int, body: bytes) -> bytes:
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([command, family]) + struct.pack("!H", len(body)) + body


def v2_inet(source: str, destination: str, sport: int, dport: int, tlvs: bytes = b"") -> bytes:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
    family = 0x11 if src.version == 4 else 0x21
    return v2(0x21, family, src.packed + dst.packed + struct.pack("!HH", sport, dport) + tlvs)


CASES = [
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 1234 80\r\n", ("192.0.2.1", 1234), ("198.51.100.2", 80)),
    (b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n", ("2001:db8::1", 65535), ("2001:db8::2", 0)),
    (b"PROXY UNKNOWN\r\n", None, None),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None, None),
    (v2_inet("192.0.2.1", "192.0.2.2", 5000, 443), ("192.0.2.1", 5000), ("192.0.2.2", 443)),
    (v2_inet("2001:db8::1", "2001:db8::2", 1, 2, tlvs=b"\x04\x00\x02ab"), ("2001:db8::1", 1), ("2001:db8::2", 2)),
    (v2(0x20, 0x11, bytes(12)), None, None),  # LOCAL
    (v2(0x21, 0x00, b""), None, None),  # UNSPEC
    (
        v2(0x21, 0x31, b"/run/a.sock".ljust(108, b"\0") + b"/run/b.sock".ljust(108, b"\0")),
        ("/run/a.sock", None),
        ("/run/b.sock", None),
    ),
]


@pytest.mark.parametrize(("header", "client", "server"), CASES)
def test_headers_whole_and_byte_by_byte(header: bytes, client: object, server: object) -> None:
    result = parse_proxy_header(header + REST)
    assert result == ProxyHeader(len(header), client, server)  # type: ignore[arg-type]
    for end in range(len(header)):
        assert parse_proxy_header(header[:end]) is ProxyPeek.NEED_DATA, end


@pytest.mark.parametrize("data", [REST, b"\x16\x03\x01\x02\x00", b"POST / HTTP/1.1\r\n", b"PRI * HTTP/2.0\r\n"])
def test_other_protocols_are_not_headers(data: bytes) -> None:
    assert parse_proxy_header(data) is ProxyPeek.ABSENT


def test_versions_can_be_turned_off() -> None:
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n", v1=False) is ProxyPeek.ABSENT
    assert parse_proxy_header(v2(0x20, 0x11, bytes(12)), v2=False) is ProxyPeek.ABSENT


@pytest.mark.parametrize(
    "header",
    [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1234\r\n",
        b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 99999 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
        b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY " + b"x" * 120,
        v2(0x11, 0x11, bytes(12)),  # version 1 in a v2 signature
        v2(0x22, 0x11, bytes(12)),  # unknown command
        v2(0x21, 0x21, bytes(12)),  # IPv6 family with an IPv4-sized block
        v2(0x21, 0x11, bytes(5000)),  # longer than we buffer
    ],
)
def test_malformed_headers_are_errors(header: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(header + REST)


@given(st.binary(max_size=300))
def test_garbage_is_absent_incomplete_a_header_or_a_clear_error(data: bytes) -> None:
    try:
        result = parse_proxy_header(data)
    except ProxyHeaderError:
        return
    if isinstance(result, ProxyHeader):
        assert 0 < result.length <= len(data)


@given(st.binary(max_size=64))
def test_garbage_after_a_v2_signature(data: bytes) -> None:
    try:
        result = parse_proxy_header(b"\r\n\r\n\x00\r\nQUIT\n" + data)
    except ProxyHeaderError:
        return
    assert result is ProxyPeek.NEED_DATA or isinstance(result, ProxyHeader)
