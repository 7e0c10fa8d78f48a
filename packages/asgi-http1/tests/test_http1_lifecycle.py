"""A connection's life over real loopback sockets, on both engines: how it ends (client close over TLS, the two
steps of a server drain) and how much it holds for a client that does not read."""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

# The shared helpers sit beside this file; pytest imports tests by path (--import-mode=importlib) without putting
# their directory on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from http1_wire import (
    TIMEOUT,
    Server,
    echo,
    http1_engine,  # noqa: F401 - the autouse fixture that runs every test on both engines
    read_response,
    request,
    serving,
)


def wait_until_closed(server: Server) -> None:
    """Until the server has no connection left (it dropped the last one), or TIMEOUT."""
    assert server.context is not None
    deadline = time.monotonic() + TIMEOUT
    while server.context.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.context.connections


# ---- TLS ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context that trusts it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def asyncio_log() -> Iterator[Records]:
    """What the asyncio logger says meanwhile, from any thread (the server runs in its own)."""
    records = Records()
    logger = logging.getLogger("asyncio")
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "tcp-fin"])
def test_a_tls_keep_alive_session_closed_by_the_client_logs_nothing(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], asyncio_log: Records, close_notify: bool
) -> None:
    server_context, client_context = tls
    with serving(echo, ssl_context=server_context) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        sock = client_context.wrap_socket(raw, server_hostname="127.0.0.1")
        stream = sock.makefile("rb")
        for path in ("/one", "/two"):
            sock.sendall(request(path))
            assert read_response(stream).headers[b"x-path"] == path.encode()
        stream.close()
        if close_notify:
            sock.unwrap().close()
        else:
            sock.close()
        wait_until_closed(server)
    assert not [message for message in asyncio_log.messages if "WARNING" in message or "ERROR" in message]
