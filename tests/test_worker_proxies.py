"""Clients behind proxies: forwarded headers from trusted and untrusted peers, PROXY protocol v1 and v2."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import struct
from pathlib import Path

import pytest
import trustme

from tests.worker_fixture import ServerFactory, raw_exchange, serve_fixture  # noqa: F401

SCOPE_REQUEST = b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def scope_of(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    return dict(json.loads(body))


def forwarded(port: int, headers: bytes) -> dict[str, object]:
    return scope_of(
        raw_exchange(port, b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
    )


def test_forwarded_headers_are_trusted_only_from_allowed_peers(serve: ServerFactory) -> None:
    trusting = serve(wait=False)  # forwarded_allow_ips defaults to 127.0.0.1,::1: the test client
    distrusting = serve("--forwarded-allow-ips", "10.0.0.0/8", wait=False)
    trusting.wait_ready()
    distrusting.wait_ready()
    xff = b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"
    rfc7239 = b'Forwarded: for="[2001:db8::5]:4711";proto=https\r\n'

    trusted = forwarded(trusting.port, xff)
    assert trusted["client"] == ["203.0.113.7", 0]
    assert trusted["scheme"] == "https"
    assert forwarded(trusting.port, rfc7239)["client"] == ["2001:db8::5", 0]

    for headers in (xff, rfc7239):
        ignored = forwarded(distrusting.port, headers)
        assert ignored["client"][0] == "127.0.0.1"  # type: ignore[index]
        assert ignored["scheme"] == "http"


def proxy_v2(source: str, destination: str, sport: int, dport: int, *, local: bool = False) -> bytes:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", sport, dport)
    command = 0x20 if local else 0x21
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([command, family]) + struct.pack("!H", len(body)) + body


def test_proxy_protocol_v1_and_v2_from_a_trusted_proxy(serve: ServerFactory, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = serve("--proxy-protocol", "auto", "--access-logfile", str(access), "--access-logformat", "%(h)s")
    v1 = scope_of(raw_exchange(server.port, b"PROXY TCP4 192.0.2.10 192.0.2.20 56324 443\r\n" + SCOPE_REQUEST))
    assert v1["client"] == ["192.0.2.10", 56324]
    assert v1["server"] == ["192.0.2.20", 443]
    v2 = scope_of(raw_exchange(server.port, proxy_v2("2001:db8::1", "2001:db8::2", 40000, 8443) + SCOPE_REQUEST))
    assert v2["client"] == ["2001:db8::1", 40000]
    assert v2["server"] == ["2001:db8::2", 8443]
    # A health check from the proxy itself (v2 LOCAL) and a peer that sends no header keep the real address.
    local = scope_of(
        raw_exchange(server.port, proxy_v2("192.0.2.1", "192.0.2.2", 1, 2, local=True) + SCOPE_REQUEST)
    )
    assert local["client"][0] == "127.0.0.1"  # type: ignore[index]
    assert scope_of(raw_exchange(server.port, SCOPE_REQUEST))["client"][0] == "127.0.0.1"  # type: ignore[index]
    # The announced client is what the access log reports.
    assert "192.0.2.10" in access.read_text()
    # A malformed header from the trusted proxy closes the connection without an answer.
    assert raw_exchange(server.port, b"PROXY TCP4 999.0.2.10 192.0.2.20 1 2\r\n" + SCOPE_REQUEST) == b""


def test_proxy_protocol_version_and_peer_restrictions(serve: ServerFactory) -> None:
    v1_only = serve("--proxy-protocol", "v1", wait=False)
    untrusted = serve("--proxy-protocol", "auto", "--proxy-allow-from", "10.0.0.1", wait=False)
    v1_only.wait_ready()
    untrusted.wait_ready()
    # v2 is not read on a v1-only server: the binary header is just a bad request.
    answer = raw_exchange(v1_only.port, proxy_v2("192.0.2.1", "192.0.2.2", 1, 2) + SCOPE_REQUEST)
    assert answer.startswith(b"HTTP/1.1 400")
    # A peer outside --proxy-allow-from cannot announce an address: its PROXY line is a bad request.
    answer = raw_exchange(untrusted.port, b"PROXY TCP4 192.0.2.10 192.0.2.20 1 2\r\n" + SCOPE_REQUEST)
    assert answer.startswith(b"HTTP/1.1 400")
    assert scope_of(raw_exchange(untrusted.port, SCOPE_REQUEST))["client"][0] == "127.0.0.1"  # type: ignore[index]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_proxy_protocol_header_comes_before_tls(serve: ServerFactory, ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    server = serve("--proxy-protocol", "v1", "--certfile", str(tmp_path / "server.pem"), tls=client)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"PROXY TCP6 2001:db8::7 2001:db8::8 5000 443\r\n")
        with client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(SCOPE_REQUEST)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    info = scope_of(answer)
    assert info["client"] == ["2001:db8::7", 5000]
    assert info["scheme"] == "https"
