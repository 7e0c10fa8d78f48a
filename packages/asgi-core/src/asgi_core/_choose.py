"""Holding a connection until its protocol is known (ALPN, a cleartext preface), then handing it over.

When the protocol depends on the connection, a small chooser protocol takes it first, then hands the transport
over explicitly: `set_protocol`, `connection_made`, and the bytes it already read. A connection whose protocol is
fixed never meets the chooser (`ProtocolPlan.needs_choice`).
"""

from __future__ import annotations

import asyncio
from typing import cast

from ._connection import ConnectionInfo, peer_is_trusted
from ._context import ServerContext
from ._deadline import Deadline
from ._plan import ProtocolPlan, Recognizing
from ._proxy import ProxyHeader
from ._registry import ProtocolPlugin
from ._transport import Transport


class Chooser(asyncio.Protocol):
    """Picks the protocol of one connection and hands the connection to it with the bytes read so far."""

    def __init__(self, plan: ProtocolPlan, context: ServerContext, proxy: ProxyHeader | None) -> None:
        self._plan = plan
        self._context = context
        self._proxy = proxy
        self._buffer = b""
        self._transport: Transport | None = None
        self._deadline: Deadline | None = None
        self._sniffing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("Transport", transport)
        plan = self._plan
        tls = transport.get_extra_info("ssl_object")
        if tls is not None:
            self._switch(plan.by_alpn.get(tls.selected_alpn_protocol() or "", plan.default))
            return
        client = ConnectionInfo.from_transport(self._transport, self._proxy).client
        if not peer_is_trusted(self._context.config, client):
            self._switch(plan.default)  # h2c only for trusted peers; everyone else gets plain HTTP/1.x
            return
        self._sniffing = True
        self._context.connections.add(self)
        if self._context.draining:
            self.shutdown()
            return
        timeout = self._context.config.header_timeout
        if timeout is not None:
            self._deadline = Deadline(self._context.loop or asyncio.get_running_loop(), self.going_away)
            self._deadline.arm(timeout)

    def data_received(self, data: bytes) -> None:
        plan = self._plan
        self._buffer += data
        recognizing = cast("Recognizing", plan.prior_knowledge)
        verdict = recognizing.recognizes(self._buffer)
        if verdict is None:
            return
        if verdict or plan.prior_knowledge_only:
            # A prior-knowledge-only port hands everything to HTTP/2, which refuses what is not its preface in
            # its own terms (GOAWAY PROTOCOL_ERROR), as RFC 9113 section 3.4 asks.
            self._switch(cast("ProtocolPlugin", plan.prior_knowledge))
        else:
            self._switch(plan.default)

    def eof_received(self) -> bool:
        self.going_away()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_sniffing()

    # ServerConnection: a connection still being sniffed has nothing in flight, and its client may be sending
    # its first request right now: like an idle keep-alive connection, it gets the drain's idle grace to do so.
    def shutdown(self) -> None:
        if self._sniffing:
            if self._deadline is None:
                self._deadline = Deadline(self._context.loop or asyncio.get_running_loop(), self.going_away)
            self._deadline.arm(self._context.config.drain_idle_grace)

    def going_away(self) -> None:
        self._stop_sniffing()
        if self._transport is not None:
            self._transport.close()

    def _stop_sniffing(self) -> None:
        if self._deadline is not None:
            self._deadline.close()
            self._deadline = None
        if self._sniffing:
            self._sniffing = False
            self._context.connections.discard(self)

    def _switch(self, plugin: ProtocolPlugin) -> None:
        self._stop_sniffing()
        transport = self._transport
        assert transport is not None  # noqa: S101 - only called after connection_made
        protocol = plugin.create_protocol(self._context, self._proxy)
        transport.set_protocol(protocol)  # type: ignore[attr-defined]
        protocol.connection_made(cast("asyncio.BaseTransport", transport))
        data, self._buffer = self._buffer, b""
        if data and not transport.is_closing():
            protocol.data_received(data)
