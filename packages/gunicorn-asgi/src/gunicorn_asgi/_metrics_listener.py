"""The `--metrics-bind` socket, and how it outlives a USR2 binary upgrade.

Gunicorn's upgrade forks the master and execs a new one, which binds the same `--bind` addresses through sockets
it inherits (their numbers in `GUNICORN_FD`), while the old master still serves. The metrics port is ours, not
Gunicorn's: bound anew, it is taken by the old master, and the new one would fail to start. So the master marks
its metrics socket inheritable and names it in the environment that Gunicorn hands to the next master (its
`env_orig`: the re-exec passes that, not `os.environ`); the next master serves from the same socket. Both masters
then answer scrapes from one directory of files (see `_exporter.py`), so either answer is the whole server.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Callable, MutableMapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ._errors import StartupError

#: The inherited socket's file descriptor, set for the next master by a master that serves the metrics.
FD_ENV = "GUNICORN_ASGI_METRICS_FD"


def listen(host: str, port: int, successor_env: MutableMapping[str, str]) -> socket.socket:
    """The listening socket for `host:port`: inherited from the previous master when there is one, else bound;
    left inheritable and named in `successor_env` for the next one."""
    sock = _inherited(port) or _bind(host, port)
    sock.set_inheritable(True)
    successor_env[FD_ENV] = str(sock.fileno())
    return sock


def serve(sock: socket.socket, app: Callable[..., Any]) -> None:
    """Answer HTTP on `sock` with the WSGI `app` from a daemon thread (prometheus_client's `make_wsgi_app`)."""
    server = _MetricsServer(sock)
    server.set_app(app)
    threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True).start()


def _inherited(port: int) -> socket.socket | None:
    value = os.environ.pop(FD_ENV, None)
    if value is None or not value.isdigit():
        return None
    fd = int(value)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None  # not a socket any more: the number was reused, leave it alone
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.type == socket.SOCK_STREAM and listening and sock.getsockname()[1] == port:
        return sock
    sock.detach()  # someone else's socket, or --metrics-bind changed with the upgrade: bind the new address
    return None


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise StartupError(f"--metrics-bind {host}:{port}: cannot listen there: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise StartupError(f"--metrics-bind {host}:{port}: cannot listen there: {exc.strerror or exc}") from None
    return sock


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # a scrape every few seconds is not worth a line on stderr


class _MetricsServer(ThreadingMixIn, WSGIServer):
    """wsgiref's server on a socket that is already listening (bound here or inherited), a thread a scrape."""

    daemon_threads = True

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.getsockname()[:2], _QuietHandler, bind_and_activate=False)
        self.socket.close()  # the one the base class made; ours listens already
        self.socket = sock
        host, port = self.server_address = sock.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()
