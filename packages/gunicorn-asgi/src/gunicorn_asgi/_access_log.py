"""Finished requests -> Gunicorn's logger, so `--access-logfile`, `--access-logformat` and statsd all work.

Gunicorn's `Logger.access(resp, req, environ, request_time)` reads a WSGI-shaped request, response and
environ; the small views here present an `asgi_core.AccessRecord` in that shape. Records are only built when
something consumes them: an access log, a logger that overrides `access` (Gunicorn's statsd logger, which
sends request metrics with or without an access log), or a `post_request` hook.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from asgi_core import AccessRecord, Headers, Scope

from ._config_map import setting
from ._json_log import JsonAccessLog


class RequestView:
    """The parts of a Gunicorn request that its logger and request hooks read."""

    __slots__ = ("headers", "method", "path", "query", "scheme", "uri", "version")

    def __init__(self, method: str, path: str, query: str, version: str, headers: Headers, scheme: str) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.uri = f"{path}?{query}" if query else path
        major, _, minor = version.partition(".")
        self.version = (int(major), int(minor or 0))
        # Gunicorn keeps request header names upper-cased.
        self.headers = [(name.decode("latin-1").upper(), value.decode("latin-1")) for name, value in headers]
        self.scheme = scheme

    @classmethod
    def from_scope(cls, scope: Scope) -> RequestView:
        return cls(
            scope.get("method", "GET"),
            scope["path"],
            scope["query_string"].decode("latin-1"),
            scope["http_version"],
            scope["headers"],
            scope["scheme"],
        )


class ResponseView:
    __slots__ = ("headers", "sent", "status", "status_code")

    def __init__(self, status: int, sent: int, headers: Headers) -> None:
        self.status = str(status)
        self.status_code = status
        self.sent = sent
        self.headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def environ_for(request: RequestView, client: tuple[str, int | None] | None) -> dict[str, Any]:
    """The WSGI-style environ Gunicorn's access-log atoms read (`%(h)s`, `%(r)s`, `%({name}e)s`, ...)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "RAW_URI": request.uri,
        "PATH_INFO": request.path,
        "QUERY_STRING": request.query,
        "SERVER_PROTOCOL": "HTTP/{}.{}".format(*request.version),
        "REMOTE_ADDR": client[0] if client else "-",
        "REMOTE_PORT": str(client[1]) if client and client[1] is not None else "",
        "wsgi.url_scheme": request.scheme,
    }
    for name, value in request.headers:
        key = "HTTP_" + name.replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def access_log_enabled(log: Any, cfg: Any) -> bool:
    enabled = getattr(log, "access_log_enabled", None)
    if isinstance(enabled, bool):
        return enabled
    # Gunicorn before 26 has no such property: the same test it makes before writing a line.
    return bool(
        setting(cfg, "accesslog")
        or setting(cfg, "logconfig")
        or setting(cfg, "logconfig_dict")
        or setting(cfg, "logconfig_json")
        or (setting(cfg, "syslog") and not setting(cfg, "disable_redirect_access_to_syslog"))
    )


def logger_wants_access(log: Any, cfg: Any) -> bool:
    """Whether Gunicorn's logger does anything with a request: writes a line or sends metrics."""
    from gunicorn.glogging import Logger  # noqa: PLC0415 - kept out of import time of the package

    return access_log_enabled(log, cfg) or type(log).access is not Logger.access


def statsd_observer(log: Any) -> Callable[[AccessRecord], None] | None:
    """The request metrics Gunicorn's statsd logger sends from its `access()`, for when that is not called."""
    from gunicorn.instrument.statsd import Statsd  # noqa: PLC0415 - as above

    if not isinstance(log, Statsd):
        return None
    timer = log.timer

    def observe(record: AccessRecord) -> None:
        timer("gunicorn.request.duration", record.duration * 1000)
        log.increment("gunicorn.requests", 1)
        log.increment(f"gunicorn.request.status.{record.status}", 1)

    return observe


def is_custom_hook(hook: object) -> bool:
    """Whether a Gunicorn server hook was set by the user (the defaults live in gunicorn.config)."""
    return hook is not None and getattr(hook, "__module__", None) != "gunicorn.config"


def make_access_logger(
    worker: Any, log: Any, cfg: Any, observers: tuple[Callable[[AccessRecord], None], ...] = ()
) -> Callable[[AccessRecord], None] | None:
    """The `ServerContext.access_log` callback, or `None` when nothing would use the records.

    With `--access-log-json` the line is written as JSON (`_json_log.py`) instead of through Gunicorn's
    `access()`, so `--access-logformat` applies only when it is off. `observers` (the metrics) see every record.
    """
    post_request = setting(cfg, "post_request")
    if not is_custom_hook(post_request):
        post_request = None
    json_log = (
        JsonAccessLog(log) if setting(cfg, "access_log_json", False) and access_log_enabled(log, cfg) else None
    )
    if json_log is not None:
        observers = (*observers, json_log)
        statsd = statsd_observer(log)  # Gunicorn's access() is not called for JSON lines: send its metrics here
        if statsd is not None:
            observers = (*observers, statsd)
    wants_log = json_log is None and logger_wants_access(log, cfg)
    if not wants_log and post_request is None:
        if not observers:
            return None
        if len(observers) == 1:
            only = observers[0]

            def observe_one(record: AccessRecord) -> None:
                try:
                    only(record)
                except Exception:
                    log.exception("Failed to log request")

            return observe_one

    def record_access(record: AccessRecord) -> None:
        try:
            for observe in observers:
                observe(record)
            if wants_log or post_request is not None:
                log_record(record)
        except Exception:
            log.exception("Failed to log request")

    def log_record(record: AccessRecord) -> None:
        request = RequestView(
            record.method,
            record.path,
            record.query_string.decode("latin-1"),
            record.http_version,
            record.request_headers,
            record.scheme,
        )
        response = ResponseView(record.status, record.response_bytes, record.response_headers)
        environ = environ_for(request, record.client)
        if wants_log:
            log.access(response, request, environ, dt.timedelta(seconds=record.duration))
        if post_request is not None:
            try:
                post_request(worker, request, environ, response)
            except Exception:
                log.exception("Exception in post_request hook")

    return record_access
