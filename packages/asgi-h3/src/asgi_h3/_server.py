"""The datagram endpoint: aioquic's QUIC server (connection ids, version negotiation) making `H3Protocol`s."""

from __future__ import annotations

import asyncio
import ssl
from functools import partial

from aioquic._buffer import Buffer
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import NetworkAddress
from aioquic.quic.packet import pull_quic_header
from asgi_core import ServerContext

from ._certs import CertificateFiles, certificate_of
from ._limits import H3Limits
from ._protocol import H3Protocol


class H3Server(QuicServer):
    """One UDP endpoint serving HTTP/3; its connections register in `context.connections`."""

    def __init__(self, context: ServerContext, configuration: QuicConfiguration, limits: H3Limits) -> None:
        super().__init__(
            configuration=configuration,
            create_protocol=partial(H3Protocol, context=context, limits=limits),
            retry=limits.retry,
        )
        self._context = context

    def datagram_received(self, data: bytes | str, addr: NetworkAddress) -> None:
        context = self._context
        if len(context.connections) >= context.config.max_connections and not self._known(data):
            # At the server's connection cap (TCP and QUIC together) a packet that would open a connection is
            # dropped, as a full accept backlog leaves a SYN unanswered: the client retries or stays on TCP.
            return
        super().datagram_received(data, addr)

    def _known(self, data: bytes | str) -> bool:
        """Whether the packet belongs to a connection this endpoint serves."""
        try:
            header = pull_quic_header(
                Buffer(data=data),  # type: ignore[arg-type]
                host_cid_length=self._configuration.connection_id_length,
            )
        except ValueError:
            return False
        return header.destination_cid in self._protocols

    def connection_lost(self, exc: Exception | None) -> None:
        """The server closed the endpoint (the end of its drain): what is left can send nothing more."""
        for protocol in set(self._protocols.values()):
            if isinstance(protocol, H3Protocol):
                protocol.abandon()
        self._protocols.clear()


def quic_configuration(certificate: CertificateFiles, limits: H3Limits) -> QuicConfiguration:
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=list(H3_ALPN),
        idle_timeout=limits.idle_timeout,
        max_stream_data=limits.max_stream_data,
        max_data=limits.max_data,
    )
    configuration.load_cert_chain(certificate.certfile, certificate.keyfile, certificate.password)
    return configuration


def create_server(
    context: ServerContext, ssl_context: ssl.SSLContext | CertificateFiles, limits: H3Limits | None = None
) -> asyncio.DatagramProtocol:
    """An `H3Server` for `context`, with the certificate recorded on `ssl_context` (or given as files)."""
    limits = limits or H3Limits()
    if isinstance(ssl_context, CertificateFiles):
        files = ssl_context
    elif context.certificate is not None:  # the server knows its certificate's files (the Gunicorn worker does)
        files = CertificateFiles(*context.certificate)
    else:
        files = certificate_of(ssl_context)
    return H3Server(context, quic_configuration(files, limits), limits)
