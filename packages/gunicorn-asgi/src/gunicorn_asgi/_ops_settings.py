"""The worker's operations settings: memory recycling, JSON access logs, the Prometheus exporter.

Unlike the settings in `_settings.py`, these are not `asgi_core.Config` fields: they belong to the host (the
Gunicorn worker and its master), not to any protocol. Each has its own default, help and parser here, and the
`gunicorn-asgi` command registers them beside the others. A bad value is a `ValueError` whose message names the
setting, its flag, the value and what is accepted; Gunicorn prints it and exits before any worker starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_OFF_WORDS = frozenset({"", "0", "off", "none", "no", "false"})
_MAX_PORT = 65535


@dataclass(frozen=True)
class OpsSetting:
    """One worker-level setting: name (as in `gunicorn.conf.py`), flag, default, help, and its parser."""

    name: str
    flag: str
    default: Any
    help: str
    accepted: str
    parse: Callable[[object], Any]
    #: A boolean that is off by default: the bare flag turns it on.
    is_switch: bool = False
    meta: str = "STRING"

    def error(self, value: object) -> ValueError:
        return ValueError(f"invalid value for {self.name} ({self.flag}): {value!r}; accepted: {self.accepted}")


def _parse_mebibytes(value: object) -> int:
    if isinstance(value, bool):
        raise MAX_WORKER_MEMORY.error(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise MAX_WORKER_MEMORY.error(value)
    if number < 0:
        raise MAX_WORKER_MEMORY.error(value)
    return number


def _parse_switch(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise ACCESS_LOG_JSON.error(value)


def parse_bind(value: object) -> tuple[str, int] | None:
    """`HOST:PORT` (`[::1]:9100` for IPv6) -> (host, port); off words and None -> None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _OFF_WORDS):
        return None
    if isinstance(value, tuple) and len(value) == 2:  # noqa: PLR2004 - already parsed (a config file's tuple)
        value = f"{value[0]}:{value[1]}"
    if not isinstance(value, str):
        raise METRICS_BIND.error(value)
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or (":" in host and not text.startswith("[")) or not port_text.isdigit():
        raise METRICS_BIND.error(value)
    port = int(port_text)
    if not 0 < port <= _MAX_PORT:
        raise METRICS_BIND.error(value)
    return host, port


def _validate_bind(value: object) -> str | None:
    bind = parse_bind(value)
    return None if bind is None else str(value).strip()


MAX_WORKER_MEMORY = OpsSetting(
    name="max_worker_memory",
    flag="--max-worker-memory",
    default=0,
    help=(
        "Recycle a worker whose resident memory (RSS) passes this many MiB: it is read from the heartbeat every "
        "few seconds, and past the limit the worker logs its RSS and the limit, stops accepting and drains "
        "without losing a request (like --max-requests) while the master starts its replacement. 0 turns it off."
    ),
    accepted="a whole number of MiB, 0 or more (0 turns it off)",
    parse=_parse_mebibytes,
    meta="MiB",
)
ACCESS_LOG_JSON = OpsSetting(
    name="access_log_json",
    flag="--access-log-json",
    default=False,
    help=(
        "Write each access-log line (with --access-logfile) as one JSON object: time, remote_addr, method, path, "
        "query, status, bytes, duration_ms, protocol, http_version, user_agent, referer, request_id, pid. "
        "--access-logformat applies when this is off."
    ),
    accepted="True or False",
    parse=_parse_switch,
    is_switch=True,
)
METRICS_BIND = OpsSetting(
    name="metrics_bind",
    flag="--metrics-bind",
    default=None,
    help=(
        "Serve Prometheus metrics for the whole server (all workers summed, retired workers' counts kept) at "
        "GET /metrics on this HOST:PORT, from the master process. Needs the prometheus_client package: "
        "install gunicorn-asgi[metrics]. Off when unset."
    ),
    accepted="HOST:PORT with a port from 1 to 65535 ([::1]:9100 for IPv6), or nothing to turn it off",
    parse=_validate_bind,
    meta="HOST:PORT",
)

OPS_SETTINGS: tuple[OpsSetting, ...] = (MAX_WORKER_MEMORY, ACCESS_LOG_JSON, METRICS_BIND)


def register_ops(gconfig: Any, known: set[str]) -> list[str]:
    """Define these as Gunicorn settings (in gunicorn.config's registry); returns the names added."""
    added: list[str] = []
    for spec in OPS_SETTINGS:
        if spec.name in known:
            continue
        attrs: dict[str, Any] = {
            "name": spec.name,
            "section": "gunicorn-asgi",
            "cli": [spec.flag],
            "validator": spec.parse,
            "default": spec.default,
            "desc": spec.help,
        }
        if spec.is_switch:
            attrs.update(action="store_true")
        else:
            attrs["meta"] = spec.meta
        type(f"ASGI_{spec.name}", (gconfig.Setting,), attrs)
        added.append(spec.name)
    return added


def describe_ops_settings() -> list[dict[str, Any]]:
    """One dict per setting, for the generated settings reference."""
    return [
        {
            "name": spec.name,
            "flag": spec.flag,
            "default": spec.default,
            "help": spec.help,
            "accepted": spec.accepted,
        }
        for spec in OPS_SETTINGS
    ]
