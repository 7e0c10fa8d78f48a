"""PROXY protocol v1 (text) and v2 (binary) headers, as HAProxy and load balancers send them: a sans-IO parser.

`parse_proxy_header(data, ...)` says "a header of n bytes", "no header", or "need more bytes"; the server that reads
the header from a socket (`_accept.py`) consumes exactly that many bytes and hands the announced addresses to
the connection's protocol with the connection itself (`ConnectionInfo.from_transport(transport, proxy)`).
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from dataclasses import dataclass, field

from ._types import Address

V1_PREFIX = b"PROXY "
V1_MAX_LENGTH = 107  # the whole line with its CRLF, from the specification
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER_LENGTH = 16
#: Addresses and TLVs beyond this are refused rather than buffered (HAProxy's own TLVs stay far below it).
V2_MAX_LENGTH = V2_HEADER_LENGTH + 4096
_V2_ADDRESS_SIZES = {0x1: 12, 0x2: 36, 0x3: 216}  # AF_INET, AF_INET6, AF_UNIX with their ports


class ProxyPeek(enum.Enum):
    NEED_DATA = "need more bytes to decide"
    ABSENT = "no PROXY header: the connection starts with its own protocol"


class ProxyHeaderError(ValueError):
    """A malformed PROXY header from a trusted peer: the connection is closed."""


@dataclass(slots=True, init=False)
class ProxyHeader:
    """The addresses a connection comes with: those a PROXY header announced (`length`: the header's size), or,
    from a server's acceptor, those `accept()` gave (`length` 0), so that the protocol does not ask the socket
    for them again. Never changed once made; not frozen, as one is made for every connection and a frozen
    dataclass takes three times as long to make; its `__init__` written out, as `ConnectionInfo`'s is."""

    length: int
    #: The addresses the proxy announced; `None` for LOCAL (v2) and UNKNOWN (v1) connections, which are the
    #: proxy's own (health checks) and keep the real peer address.
    client: Address | None
    server: Address | None
    #: The plain TCP or Unix socket the acceptor took, for `close_now` (`_transport.py`) by the protocol that
    #: owns the whole connection (never a multiplexed stream's); `None` under TLS, whose close_notify goes
    #: first, and wherever another server made the connection.
    sock: socket.socket | None = field(default=None, compare=False, repr=False)

    def __init__(
        self, length: int, client: Address | None, server: Address | None, sock: socket.socket | None = None
    ) -> None:
        self.length = length
        self.client = client
        self.server = server
        self.sock = sock


def parse_proxy_header(data: bytes, *, v1: bool = True, v2: bool = True) -> ProxyHeader | ProxyPeek:
    if not data:
        return ProxyPeek.NEED_DATA
    if v2 and data[:12] == V2_SIGNATURE[: min(len(data), 12)] and data[:1] == b"\r":
        if len(data) < V2_HEADER_LENGTH:
            return ProxyPeek.NEED_DATA
        return _parse_v2(data)
    if v1 and data[:6] == V1_PREFIX[: min(len(data), 6)] and data[:1] == b"P":
        if len(data) < len(V1_PREFIX):
            return ProxyPeek.NEED_DATA
        return _parse_v1(data)
    return ProxyPeek.ABSENT


def _parse_v1(data: bytes) -> ProxyHeader | ProxyPeek:
    end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end < 0:
        if len(data) < V1_MAX_LENGTH:
            return ProxyPeek.NEED_DATA
        raise ProxyHeaderError("PROXY v1 line longer than 107 bytes")
    line = data[:end].decode("ascii", "replace")
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":  # noqa: PLR2004
        return ProxyHeader(end + 2, None, None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):  # noqa: PLR2004
        raise ProxyHeaderError(f"malformed PROXY v1 line {line!r}")
    version = 4 if parts[1] == "TCP4" else 6
    client = (_v1_host(parts[2], version, line), _v1_port(parts[4], line))
    server = (_v1_host(parts[3], version, line), _v1_port(parts[5], line))
    return ProxyHeader(end + 2, client, server)


def _v1_host(text: str, version: int, line: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"bad address in PROXY v1 line {line!r}") from None
    if address.version != version:
        raise ProxyHeaderError(f"address family does not match in PROXY v1 line {line!r}")
    return str(address)


def _v1_port(text: str, line: str) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:  # noqa: PLR2004
        raise ProxyHeaderError(f"bad port in PROXY v1 line {line!r}")
    return int(text)


def _parse_v2(data: bytes) -> ProxyHeader | ProxyPeek:
    version_command, family = data[12], data[13]
    length = V2_HEADER_LENGTH + int.from_bytes(data[14:16], "big")
    if version_command >> 4 != 2:  # noqa: PLR2004
        raise ProxyHeaderError(f"unsupported PROXY v2 version {version_command >> 4}")
    if length > V2_MAX_LENGTH:
        raise ProxyHeaderError(f"PROXY v2 header of {length} bytes is longer than {V2_MAX_LENGTH}")
    if len(data) < length:
        return ProxyPeek.NEED_DATA
    command = version_command & 0x0F
    if command == 0x0:  # LOCAL: the proxy's own connection
        return ProxyHeader(length, None, None)
    if command != 0x1:
        raise ProxyHeaderError(f"unknown PROXY v2 command {command}")
    address_family = family >> 4
    size = _V2_ADDRESS_SIZES.get(address_family)
    if size is None:  # AF_UNSPEC: nothing announced
        return ProxyHeader(length, None, None)
    body = data[V2_HEADER_LENGTH:length]
    if len(body) < size:
        raise ProxyHeaderError("PROXY v2 address block shorter than its family needs")
    if address_family == 0x3:  # noqa: PLR2004 - AF_UNIX: paths, no ports
        return ProxyHeader(length, (_unix_path(body[:108]), None), (_unix_path(body[108:216]), None))
    width = 4 if address_family == 0x1 else 16
    source = str(ipaddress.ip_address(body[:width]))
    destination = str(ipaddress.ip_address(body[width : 2 * width]))
    ports = body[2 * width : 2 * width + 4]
    client = (source, int.from_bytes(ports[:2], "big"))
    server = (destination, int.from_bytes(ports[2:], "big"))
    return ProxyHeader(length, client, server)


def _unix_path(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
