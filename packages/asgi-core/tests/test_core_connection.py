"""Connection info, proxy headers from trusted peers only, and write/read flow control."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgi_core import Config, ConnectionInfo, FlowControl, ProxyHeader, apply_forwarded, peer_in, peer_is_trusted

PROXY = ("10.0.0.2", 40000)
TRUSTING = Config(forwarded_allow_ips=("10.0.0.0/8", "127.0.0.1"))


def conn(client: tuple[str, int | None] | None = PROXY, scheme: str = "http") -> ConnectionInfo:
    return ConnectionInfo(client=client, server=("10.0.0.1", 8000), scheme=scheme)


class FakeTLS:
    def selected_alpn_protocol(self) -> str:
        return "http/1.1"


class FakeTransport:
    def __init__(self, **extra: Any) -> None:
        self.extra = extra
        self.closing = False
        self.pauses = 0
        self.resumes = 0

    def write(self, data: bytes | bytearray | memoryview, /) -> None:
        pass

    def writelines(self, list_of_data: list[bytes], /) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.pauses += 1

    def resume_reading(self) -> None:
        self.resumes += 1

    def get_extra_info(self, name: str, default: Any = None, /) -> Any:
        return self.extra.get(name, default)


def test_connection_info_from_tcp_transport() -> None:
    info = ConnectionInfo.from_transport(FakeTransport(peername=("192.0.2.1", 5000), sockname=("0.0.0.0", 80)))
    assert info == ConnectionInfo(client=("192.0.2.1", 5000), server=("0.0.0.0", 80), scheme="http")


def test_connection_info_from_ipv6_tls_and_unix_transports() -> None:
    tls: Any = FakeTLS()
    info = ConnectionInfo.from_transport(
        FakeTransport(peername=("::1", 5000, 0, 0), sockname=("::1", 443, 0, 0), ssl_object=tls)
    )
    assert (info.client, info.server, info.scheme) == (("::1", 5000), ("::1", 443), "https")
    assert info.tls is tls
    assert info.alpn_protocol == "http/1.1"
    unix = ConnectionInfo.from_transport(FakeTransport(peername="", sockname="/run/app.sock"))
    assert (unix.client, unix.server) == (None, ("/run/app.sock", None))


class Untouchable(FakeTransport):
    def get_extra_info(self, name: str, default: Any = None, /) -> Any:
        raise AssertionError(f"asked for {name}")


def test_connection_info_from_the_addresses_the_server_accepted_it_with() -> None:
    # The server's acceptor passes what accept() returned, and says when it has no TLS: the transport is not asked.
    accepted = ProxyHeader(0, ("192.0.2.1", 5000), ("192.0.2.2", 80))
    info = ConnectionInfo.from_transport(Untouchable(), accepted, tls=False)
    assert info == ConnectionInfo(client=("192.0.2.1", 5000), server=("192.0.2.2", 80), scheme="http")
    unix = ConnectionInfo.from_transport(Untouchable(), ProxyHeader(0, None, ("/run/app.sock", None)), tls=False)
    assert (unix.client, unix.server) == (None, ("/run/app.sock", None))
    # A LOCAL or UNKNOWN PROXY header announces no address: the socket's stand.
    local = ConnectionInfo.from_transport(
        FakeTransport(peername=("10.0.0.2", 4000), sockname=("10.0.0.1", 80)),
        ProxyHeader(16, None, None),
        tls=False,
    )
    assert (local.client, local.server) == (("10.0.0.2", 4000), ("10.0.0.1", 80))
    # TLS possible (or not known): the transport says.
    tls: Any = FakeTLS()
    secure = ConnectionInfo.from_transport(FakeTransport(ssl_object=tls), accepted, tls=True)
    assert (secure.scheme, secure.tls) == ("https", tls)


def test_x_forwarded_for_and_proto_from_a_trusted_proxy() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"HTTPS")]
    result = apply_forwarded(TRUSTING, conn(), headers)
    assert result.client is not None
    assert result.client[0] == "203.0.113.7"
    assert result.scheme == "https"
    assert result.server == ("10.0.0.1", 8000)


def test_untrusted_peer_is_ignored() -> None:
    headers = [
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-proto", b"https"),
        (b"forwarded", b"for=1.2.3.4"),
    ]
    original = conn(("198.51.100.9", 1234))
    assert apply_forwarded(TRUSTING, original, headers) is original
    assert not peer_is_trusted(TRUSTING, ("198.51.100.9", 1234))


def test_right_most_untrusted_address_is_the_client() -> None:
    # The client forged the first entry; our own proxies (10/8) appended the rest.
    headers = [(b"x-forwarded-for", b"1.1.1.1, 203.0.113.7, 10.0.0.5")]
    result = apply_forwarded(TRUSTING, conn(), headers)
    assert result.client is not None
    assert result.client[0] == "203.0.113.7"


def test_multiple_x_forwarded_for_headers_form_one_chain() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"203.0.113.7 , 10.0.0.9")]
    result = apply_forwarded(TRUSTING, conn(), headers)
    assert result.client is not None
    assert result.client[0] == "203.0.113.7"


@pytest.mark.parametrize(
    ("value", "host"),
    [(b"192.0.2.1:4711", "192.0.2.1"), (b"[2001:db8::1]:4711", "2001:db8::1"), (b"2001:db8::1", "2001:db8::1")],
)
def test_x_forwarded_for_entries_with_ports(value: bytes, host: str) -> None:
    result = apply_forwarded(TRUSTING, conn(), [(b"x-forwarded-for", value + b", 10.0.0.7:80")])
    assert result.client is not None
    assert result.client[0] == host


def test_chain_of_only_trusted_hops_yields_the_left_most() -> None:
    result = apply_forwarded(TRUSTING, conn(), [(b"x-forwarded-for", b"10.9.9.9, 10.0.0.5")])
    assert result.client is not None
    assert result.client[0] == "10.9.9.9"


def test_rfc7239_forwarded() -> None:
    headers = [(b"forwarded", b'for=192.0.2.60;proto=https;by=203.0.113.43, for="10.0.0.3"')]
    result = apply_forwarded(TRUSTING, conn(), headers)
    assert result.client is not None
    assert result.client[0] == "192.0.2.60"
    assert result.scheme == "https"


@pytest.mark.parametrize(
    ("value", "host"),
    [
        (b'for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        (b'For="[2001:db8:cafe::17]"', "2001:db8:cafe::17"),
        (b'for="192.0.2.43:8080"', "192.0.2.43"),
        (b"for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
        (b'for=192.0.2.43;proto=http, for="[2001:db8::1]:80";by=10.0.0.1', "2001:db8::1"),
    ],
)
def test_forwarded_node_forms(value: bytes, host: str) -> None:
    result = apply_forwarded(TRUSTING, conn(), [(b"forwarded", value)])
    assert result.client is not None
    assert result.client[0] == host


def test_forwarded_wins_over_x_forwarded() -> None:
    headers = [
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-proto", b"http"),
        (b"forwarded", b"for=192.0.2.5;proto=https"),
    ]
    result = apply_forwarded(TRUSTING, conn(scheme="http"), headers)
    assert result.client is not None
    assert (result.client[0], result.scheme) == ("192.0.2.5", "https")


@pytest.mark.parametrize(
    ("proto", "scheme"), [(b"wss", "https"), (b"ws", "http"), (b"gopher", "http"), (b"", "http")]
)
def test_proto_values(proto: bytes, scheme: str) -> None:
    result = apply_forwarded(TRUSTING, conn(), [(b"x-forwarded-proto", proto)])
    assert result.scheme == scheme
    assert result.client == PROXY  # no address given: the peer stays the client


def test_star_trusts_every_peer_and_unix_peers_are_trusted() -> None:
    everyone = Config(forwarded_allow_ips=("*",))
    result = apply_forwarded(everyone, conn(("198.51.100.9", 1)), [(b"x-forwarded-for", b"192.0.2.1")])
    assert result.client is not None
    assert result.client[0] == "192.0.2.1"
    nobody = Config(forwarded_allow_ips=())
    unix = conn(("/run/proxy.sock", None))
    result = apply_forwarded(nobody, unix, [(b"x-forwarded-proto", b"https")])
    assert result.scheme == "https"
    assert peer_in((), None)
    assert not peer_in(nobody.trusted_networks, ("127.0.0.1", 1))
    assert not peer_in(TRUSTING.trusted_networks, ("not-an-ip", 1))


def test_no_forwarding_headers_returns_the_connection_itself() -> None:
    original = conn()
    assert apply_forwarded(TRUSTING, original, [(b"host", b"example.com")]) is original


def test_flow_control_drain_waits_for_resume() -> None:
    async def main() -> None:
        flow = FlowControl(FakeTransport())
        await asyncio.wait_for(flow.drain(), 1)  # not paused: returns at once
        flow.pause_writing()
        waiters = [asyncio.ensure_future(flow.drain()) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert not any(w.done() for w in waiters)
        flow.resume_writing()
        await asyncio.wait_for(asyncio.gather(*waiters), 1)
        flow.pause_writing()
        waiter = asyncio.ensure_future(flow.drain())
        await asyncio.sleep(0)
        flow.connection_lost()  # a lost connection releases writers too
        await asyncio.wait_for(waiter, 1)
        # Cancelling one drainer does not cancel the shared waiter of the others.
        flow.pause_writing()
        first, second = asyncio.ensure_future(flow.drain()), asyncio.ensure_future(flow.drain())
        await asyncio.sleep(0)
        first.cancel()
        flow.resume_writing()
        await asyncio.wait_for(second, 1)

    asyncio.run(main())


def test_flow_control_counts_read_pauses() -> None:
    transport = FakeTransport()
    flow = FlowControl(transport)
    flow.pause_reading("body")
    flow.pause_reading("pipelined")
    flow.pause_reading("body")
    assert (transport.pauses, flow.reading_paused) == (1, True)
    flow.resume_reading("body")
    assert (transport.resumes, flow.reading_paused) == (0, True)
    flow.resume_reading("never-paused")
    flow.resume_reading("pipelined")
    assert (transport.resumes, flow.reading_paused) == (1, False)
    flow.resume_reading("pipelined")
    assert transport.resumes == 1
    transport.closing = True
    flow.pause_reading("body")
    assert transport.pauses == 1  # a closing transport is left alone
