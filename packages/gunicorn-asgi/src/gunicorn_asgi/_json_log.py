"""`--access-log-json`: each finished request as one JSON object on one access-log line.

A log pipeline (Loki, Elasticsearch, Vector, CloudWatch) parses these without a grok pattern. The line goes
to Gunicorn's access logger (`--access-logfile`, syslog, a logconfig), so where lines land is still Gunicorn's
business; only their shape changes. Non-ASCII text is escaped (`\\u00e9`), so a line is ASCII whatever the log
file's encoding, and quotes or control characters in headers cannot break it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from asgi_core import AccessRecord

_WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})
#: Request header -> JSON field. The client's X-Request-ID is kept as it is; without one, one is made.
_HEADER_FIELDS = {b"user-agent": "user_agent", b"referer": "referer", b"x-request-id": "request_id"}
_encode = json.JSONEncoder(separators=(",", ":")).encode


def rfc3339(now: float) -> str:
    """`2026-12-04T21:18:36.123Z`: UTC, millisecond precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def json_line(record: AccessRecord, pid: int, now: float) -> str:
    """One access-log line for `record`, finished at `now` (a `time.time()`)."""
    fields: dict[str, Any] = {"user_agent": None, "referer": None, "request_id": None}
    for name, value in record.request_headers:
        field = _HEADER_FIELDS.get(name)
        if field is not None and fields[field] is None:
            fields[field] = value.decode("latin-1")
    client = record.client
    return _encode(
        {
            "time": rfc3339(now),
            "remote_addr": client[0] if client else None,
            "method": record.method,
            "path": record.path,
            "query": record.query_string.decode("latin-1"),
            "status": record.status,
            "bytes": record.response_bytes,
            "duration_ms": round(record.duration * 1000, 3),
            "protocol": "websocket" if record.scheme in _WEBSOCKET_SCHEMES else "http",
            "http_version": record.http_version,
            "user_agent": fields["user_agent"],
            "referer": fields["referer"],
            "request_id": fields["request_id"] or uuid.uuid4().hex,
            "pid": pid,
        }
    )


class JsonAccessLog:
    """Writes `json_line`s to Gunicorn's access logger."""

    __slots__ = ("_logger", "_pid")

    def __init__(self, gunicorn_log: Any) -> None:
        self._logger = gunicorn_log.access_log  # the `gunicorn.access` logging.Logger, with its handlers
        self._pid = os.getpid()  # made in the worker, after the fork

    def __call__(self, record: AccessRecord) -> None:
        self._logger.info("%s", json_line(record, self._pid, time.time()))
