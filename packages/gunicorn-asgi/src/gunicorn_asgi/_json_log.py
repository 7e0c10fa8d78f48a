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
from typing import Any

from asgi_core import AccessRecord

_WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})
_encode = json.JSONEncoder(separators=(",", ":")).encode


class JsonAccessLog:
    """Writes one JSON line per record to Gunicorn's access logger.

    Per line, what does not change is not recomputed: the timestamp's seconds are formatted once per second,
    and a generated request id is this worker's random prefix and a counter (unique across workers and
    restarts, with no system call per request).
    """

    __slots__ = ("_counter", "_logger", "_pid", "_prefix", "_second", "_stamp")

    # `time` is RFC 3339 in UTC with milliseconds: 2026-12-04T21:18:36.123Z.

    def __init__(self, gunicorn_log: Any) -> None:
        self._logger = gunicorn_log.access_log  # the `gunicorn.access` logging.Logger, with its handlers
        self._pid = os.getpid()  # made in the worker, after the fork
        self._prefix = os.urandom(8).hex()
        self._counter = 0
        self._second = -1
        self._stamp = ""

    def __call__(self, record: AccessRecord) -> None:
        self._logger.info("%s", self.line(record, time.time()))

    def line(self, record: AccessRecord, now: float) -> str:
        """The access-log line for `record`, finished at `now` (a `time.time()`)."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        user_agent = referer = request_id = None
        for name, value in record.request_headers:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
        if request_id is None:
            self._counter += 1
            request_id = f"{self._prefix}{self._counter:016x}"
        client = record.client
        line: dict[str, object] = {
            "time": f"{self._stamp}.{int((now - second) * 1000):03d}Z",
            "remote_addr": client[0] if client else None,
            "method": record.method,
            "path": record.path,
            "query": record.query_string.decode("latin-1"),
            "status": record.status,
            "bytes": record.response_bytes,
            "duration_ms": round(record.duration * 1000, 3),
            "protocol": "websocket" if record.scheme in _WEBSOCKET_SCHEMES else "http",
            "http_version": record.http_version,
            "user_agent": user_agent,
            "referer": referer,
            "request_id": request_id,
            "pid": self._pid,
        }
        if record.close_code is not None:
            line["close_code"] = record.close_code
        return _encode(line)
