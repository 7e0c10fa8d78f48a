"""What is known about a connection before its first request, and what trusted proxies say about it."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from ._config import Config, Network
from ._proxy import ProxyHeader
from ._tls import tls_extension
from ._transport import Transport
from ._types import Address, Headers


@dataclass(slots=True, init=False)
class ConnectionInfo:
    """Addresses, scheme and TLS details of one connection, gathered once when it is made. Shared by the
    connection's requests: never changed once made (`with_peer` makes another). Not frozen: a frozen dataclass
    takes three times as long to make, once per connection. Its `__init__` is written out: compiled, the one
    `dataclass` generates stays an interpreted function (3.8k instructions a connection, against 0.2k)."""

    client: Address | None
    server: Address | None
    scheme: str  # "http" or "https"
    tls: ssl.SSLObject | None
    alpn_protocol: str | None
    #: `scope["extensions"]["tls"]` for every request on a TLS connection (see `_tls.py`), made once here.
    tls_extension: dict[str, Any] | None

    def __init__(
        self,
        client: Address | None,
        server: Address | None,
        scheme: str,
        tls: ssl.SSLObject | None = None,
        alpn_protocol: str | None = None,
        tls_extension: dict[str, Any] | None = None,
    ) -> None:
        self.client, self.server, self.scheme = client, server, scheme
        self.tls, self.alpn_protocol, self.tls_extension = tls, alpn_protocol, tls_extension

    @classmethod
    def from_transport(
        cls,
        transport: Transport,
        proxy: ProxyHeader | None = None,
        tls: bool | None = None,  # noqa: FBT001 - by position from the HTTP/1.1 protocol (see its call)
    ) -> ConnectionInfo:
        """The connection's facts from its transport, and its addresses from `proxy` when that names any: a
        trusted PROXY header's, or those the server's acceptor took from `accept()`. Otherwise (none given, or
        a LOCAL or UNKNOWN header, which announces none: the proxy's own connection) the socket's.

        `tls=False` says the connection is not a TLS one (its server has no SSL context: `ServerContext.tls`),
        so the transport is not asked (uvloop's answer costs 4k instructions, a connection's fiftieth)."""
        ssl_object = None if tls is False else transport.get_extra_info("ssl_object")
        client: Address | None
        server: Address | None
        if proxy is not None and (proxy.client is not None or proxy.server is not None):
            # A Unix-socket peer has no name (client None) but the server's path: announced all the same.
            client, server = proxy.client, proxy.server
        else:
            client = socket_address(transport.get_extra_info("peername"))
            server = socket_address(transport.get_extra_info("sockname"))
        # Named, not `cls(...)`: compiled, a call through `cls` is a generic Python call (3.7k instructions of a
        # Connection: close request, bench/instructions.py).
        return ConnectionInfo(
            client=client,
            server=server,
            scheme="https" if ssl_object is not None else "http",
            tls=ssl_object,
            alpn_protocol=ssl_object.selected_alpn_protocol() if ssl_object is not None else None,
            # asyncio's and uvloop's TLS transports both hand out an ssl.SSLObject; anything else gets none.
            tls_extension=tls_extension(ssl_object) if isinstance(ssl_object, ssl.SSLObject) else None,
        )

    def with_peer(self, client: Address | None, scheme: str) -> ConnectionInfo:
        return replace(self, client=client, scheme=scheme)


def socket_address(raw: object) -> Address | None:
    """An address as the socket module gives it (a host and port, more for IPv6; a Unix path) as ASGI's."""
    if isinstance(raw, tuple) and len(raw) >= 2:  # noqa: PLR2004 - IPv6 sockaddr has 4 items
        return (str(raw[0]), int(raw[1]))
    if isinstance(raw, str) and raw:
        return (raw, None)  # Unix socket path, as the ASGI spec allows
    return None


@lru_cache(maxsize=1024)
def _is_trusted(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def peer_in(networks: tuple[Network, ...] | None, client: Address | None) -> bool:
    """Whether a peer is in an allow-list (`None` admits all; Unix-socket peers are local: always in)."""
    if networks is None or client is None or client[1] is None:
        return True
    return _is_trusted(client[0], networks)


def peer_is_trusted(config: Config, client: Address | None) -> bool:
    """Whether the direct peer may speak for the client (Unix-socket peers are the local proxy: trusted)."""
    return peer_in(config.trusted_networks, client)


def apply_forwarded(config: Config, conn: ConnectionInfo, headers: Headers) -> ConnectionInfo:
    """Client address and scheme as a trusted proxy reports them; the connection as it is otherwise.

    The client is the right-most address in the forwarding chain that is not itself a trusted proxy, so a
    client cannot forge its address by sending its own X-Forwarded-For to a proxy that appends to it.
    """
    forwarded: list[bytes] = []
    forwarded_for: list[bytes] = []
    forwarded_proto = b""
    for name, value in headers:
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif name == b"x-forwarded-proto":
            forwarded_proto = value
    if not (forwarded or forwarded_for or forwarded_proto) or not peer_is_trusted(config, conn.client):
        return conn
    chain: list[str]
    if forwarded:
        chain, proto = _parse_forwarded(b",".join(forwarded))
    else:
        # Some proxies add the port ("192.0.2.1:4711", "[2001:db8::1]:4711"); the address alone is the client.
        entries = b",".join(forwarded_for).decode("latin-1").split(",")
        chain = [_strip_port(part.strip()) for part in entries if part.strip()]
        proto = forwarded_proto.decode("latin-1").strip().lower()
    client = conn.client
    for host in reversed(chain):
        client = (host, 0)
        if not peer_is_trusted(config, client):
            break
    scheme = conn.scheme
    if proto in ("http", "https"):
        scheme = proto
    elif proto in ("ws", "wss"):
        scheme = "https" if proto == "wss" else "http"
    return conn.with_peer(client, scheme)


def _parse_forwarded(value: bytes) -> tuple[list[str], str]:
    """RFC 7239: `for=192.0.2.1;proto=https, for="[2001:db8::1]:4711"` -> (["192.0.2.1", "2001:db8::1"], ...)."""
    chain: list[str] = []
    proto = ""
    for element in value.decode("latin-1").split(","):
        for pair in element.split(";"):
            key, _, raw = pair.partition("=")
            key = key.strip().lower()
            raw = raw.strip().strip('"')
            if key == "for" and raw:
                chain.append(_strip_port(raw))
            elif key == "proto" and raw:
                proto = raw.lower()
    return chain, proto


def _strip_port(node: str) -> str:
    if node.startswith("["):
        return node[1:].partition("]")[0]
    if node.count(":") == 1:
        return node.partition(":")[0]
    return node
