"""The serving layer: one for every host process, the Gunicorn worker and `serve()` alike.

A `Server` takes listening sockets, accepts on them under its connection cap (`_accept.py`), reads a PROXY
header where configured, runs the TLS handshake under a deadline, picks each connection's protocol (the
configured one, ALPN, the h2c preface: `_plan.py`, `_choose.py`), keeps count of what it serves, and drains.

The drain loses no request (see `ServerConnection` for each protocol's part):

    stop accepting ──> step 1: every connection shutdown() ──> step 2: going_away() ──> done
       (backlog waits      requests in flight finish with        what is still open is     (or sooner:
        for the next        Connection: close / GOAWAY; idle      told and closed           once no
        process)            keep-alive connections get a grace    (1001, http.disconnect)   connection
                            to send one more request                                       is left)

Step 2 comes `final_step` seconds before the drain's timeout, so that what is still open (WebSockets,
server-sent events, downloads) is ended by the server, in its protocol, rather than cut by a process kill.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ._accept import Acceptor, ProxyPolicy
from ._choose import Chooser
from ._config import Config
from ._connection_set import ConnectionSet
from ._context import AccessRecord, CertificateFiles, ServerContext
from ._deadline import Deadline
from ._plan import ProtocolPlan, plan_protocols
from ._proxy import ProxyHeader
from ._registry import Registry
from ._tls import record_server_certificate
from ._types import ASGIApp

#: The most of a drain's time given to its second step (ending what is still open), and its share at most.
FINAL_STEP = 2.0
_FINAL_SHARE = 0.25
_PROXY_VERSIONS = {"v1": (True, False), "v2": (False, True), "auto": (True, True)}


class Server:
    """Serves an ASGI app on listening sockets with every protocol installed in the registry.

    ```python
    server = Server(
        app,
        Config(http_protocols=("h2", "h1")),
        ssl_context=context,
        state=lifespan.state,
    )
    await server.start([listening_socket])
    ...
    await server.shutdown(timeout=30)
    ```

    The settings it reads are `Config`'s: `protocol`, `http_protocols`, `http2_cleartext`, `max_connections`,
    `proxy_protocol` and `proxy_allow_ips`, `header_timeout` (the TLS handshake's and the PROXY header's
    deadline too), `drain_idle_grace`. A protocol that is not installed is a `ConfigError` here, at startup.
    `certificate` names the files `ssl_context`'s certificate came from, for protocols with a TLS stack of their
    own (HTTP/3 on QUIC).
    Lifespan is the host's: run it around the server (as `serve()` does) and pass its `state`.
    """

    def __init__(
        self,
        app: ASGIApp,
        config: Config | None = None,
        *,
        registry: Registry | None = None,
        ssl_context: ssl.SSLContext | None = None,
        state: dict[str, Any] | None = None,
        access_log: Callable[[AccessRecord], None] | None = None,
        logger: logging.Logger | None = None,
        certificate: CertificateFiles | None = None,
    ) -> None:
        config = config or Config()
        self.logger = logger or logging.getLogger("asgi_core.error")
        self.registry = registry if registry is not None else Registry(logger=self.logger)
        self.ssl_context = ssl_context
        self.plan: ProtocolPlan = plan_protocols(
            self.registry, config, tls=ssl_context is not None, logger=self.logger
        )
        if self.plan.h2c != config.http2_cleartext:
            config = replace(config, http2_cleartext=self.plan.h2c)  # what applies, for HTTP/1.1's Upgrade: h2c
        if ssl_context is not None and self.plan.alpn:
            ssl_context.set_alpn_protocols(list(self.plan.alpn))
        if ssl_context is not None and certificate is not None:
            record_server_certificate(ssl_context, certificate.certfile)  # the TLS extension's `server_cert`
        self.config = config
        #: Requests (and WebSocket sessions) that completed, over the server's life.
        self.requests_served = 0
        self.context = ServerContext(
            app=app,
            config=config,
            state=state,
            access_log=access_log,
            on_request_done=self._request_done,
            logger=self.logger,
            registry=self.registry,
            connections=ConnectionSet(),
            certificate=certificate,
            tls=ssl_context is not None,
        )
        #: The listening sockets, once started, and the datagram sockets opened beside them (HTTP/3).
        self.sockets: list[socket.socket] = []
        self.datagram_sockets: list[socket.socket] = []
        self._datagram_transports: list[asyncio.BaseTransport] = []
        self._acceptor: Acceptor | None = None
        self._hurry: asyncio.Event | None = None

    # ---- running -------------------------------------------------------------------------------------

    async def start(self, sockets: Sequence[socket.socket]) -> None:
        """Start accepting on `sockets` (listening, stream): from here on the server runs on this loop."""
        loop = asyncio.get_running_loop()
        self.context.loop = loop
        self._hurry = asyncio.Event()
        self.sockets = list(sockets)
        config = self.config
        connections = self.context.connections
        assert isinstance(connections, ConnectionSet)  # noqa: S101 - made so in __init__
        self._acceptor = Acceptor(
            self.sockets,
            factory=self._protocol_factory(),
            connections=connections,
            limit=config.max_connections,
            ssl_context=self.ssl_context,
            handshake_timeout=config.header_timeout or 60.0,
            proxy=self._proxy_policy(),
            log=self.logger,
        )
        self._acceptor.start()
        if self.plan.datagram and self.ssl_context is not None:
            await self._open_datagram_endpoints(loop, self.ssl_context)

    @property
    def open_connections(self) -> int:
        """Connections held now: served ones, and those still in their PROXY header or TLS handshake."""
        return self._acceptor.open_connections if self._acceptor is not None else 0

    @property
    def draining(self) -> bool:
        return self.context.draining

    def describe(self) -> str:
        """What the server speaks, for a startup log line: `http, h2 over TLS`."""
        return self.plan.describe() + (" over TLS" if self.ssl_context is not None else "")

    # ---- stopping ------------------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        """New clients stay in the listening sockets' backlog (for another process sharing them)."""
        if self._acceptor is not None:
            self._acceptor.stop()

    def begin_drain(self, *, restarting: bool = False) -> None:
        """Stop accepting and start the drain's first step now, from synchronous code (a request that reaches
        a limit, so that its own response already says `Connection: close`); `shutdown()` carries it on."""
        self.stop_accepting()
        context = self.context
        context.restarting = context.restarting or restarting
        if not context.draining:
            context.drain_connections()

    async def shutdown(self, timeout: float = 30.0, *, restarting: bool = False) -> None:
        """Stop accepting and drain every connection (see the module doc); returns once none is left, or when
        `timeout` seconds have passed, or soon after `hurry()`.

        `restarting` says the service comes back (a reload, a recycled worker): WebSockets then close with 1012
        instead of 1001.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        final = min(FINAL_STEP, max(timeout, 0.0) * _FINAL_SHARE)
        self.begin_drain(restarting=restarting)
        context = self.context
        # Connections still in their PROXY header or TLS handshake get the idle grace too, then are let go.
        acceptor = self._acceptor
        grace = Deadline(loop, acceptor.abort_opening) if acceptor else None
        if grace is not None:
            grace.arm(self.config.drain_idle_grace)
        if self.open_connections:
            self.logger.info("draining %d connections (up to %.2f s)", self.open_connections, timeout)
            await self._wait_idle(deadline - final - loop.time())
        if self.open_connections:
            self.logger.info(
                "ending %d connections still open (their apps see a disconnect)", self.open_connections
            )
            context.close_connections()
            await self._wait_idle(deadline - loop.time())
        if self.open_connections:
            self.logger.warning("closing %d connections that did not finish in time", self.open_connections)
        if grace is not None:
            grace.close()
        for transport in self._datagram_transports:
            transport.close()
        if acceptor is not None:
            acceptor.abort_opening()

    def hurry(self) -> None:
        """Cut a drain short (a quick stop): what is still open is told and closed without waiting for it."""
        if self._hurry is not None:
            self._hurry.set()

    # ---- internals -----------------------------------------------------------------------------------

    def _protocol_factory(self) -> Callable[[ProxyHeader | None], asyncio.Protocol]:
        plan, context = self.plan, self.context
        if plan.needs_choice(tls=self.ssl_context is not None):
            return lambda proxy: Chooser(plan, context, proxy)
        create = plan.default.create_protocol
        return lambda proxy: create(context, proxy)

    async def _open_datagram_endpoints(self, loop: asyncio.AbstractEventLoop, ssl_context: ssl.SSLContext) -> None:
        """A datagram socket on the address of each TCP listener, for each datagram protocol (HTTP/3 on the TLS
        port). SO_REUSEPORT lets every worker of a server bind its own; the kernel spreads peers over them."""
        context = self.context
        advertised: list[str] = []
        for sock in self.sockets:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            port = sock.getsockname()[1]
            advertised += [f'{alpn}=":{port}"; ma=86400' for plugin in self.plan.datagram for alpn in plugin.alpn]
            for plugin in self.plan.datagram:
                udp = socket.socket(sock.family, socket.SOCK_DGRAM)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                udp.bind(sock.getsockname()[:2])
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(plugin.create_datagram_protocol, context, ssl_context), sock=udp
                )
                self.datagram_sockets.append(udp)
                self._datagram_transports.append(transport)
        if advertised:
            context.alt_svc = ", ".join(dict.fromkeys(advertised)).encode("ascii")

    def _proxy_policy(self) -> ProxyPolicy | None:
        config = self.config
        versions = _PROXY_VERSIONS.get(config.proxy_protocol)
        if versions is None:
            return None
        return ProxyPolicy(
            v1=versions[0], v2=versions[1], trusted=config.proxy_networks, timeout=config.header_timeout or 10.0
        )

    def _request_done(self) -> None:
        self.requests_served += 1

    async def _wait_idle(self, timeout: float) -> None:
        acceptor, hurry = self._acceptor, self._hurry
        if acceptor is None or hurry is None or timeout <= 0 or hurry.is_set():
            return
        idle = asyncio.ensure_future(acceptor.wait_idle())
        hurried = asyncio.ensure_future(hurry.wait())
        try:
            await asyncio.wait({idle, hurried}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            hurried.cancel()


def listen(host: str = "127.0.0.1", port: int = 8000, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on `host:port` (IPv4 or IPv6), for `Server.start`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog, reuse_port=False)
