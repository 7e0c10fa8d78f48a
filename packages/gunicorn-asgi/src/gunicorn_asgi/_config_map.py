"""Gunicorn's settings (and ours) -> one validated `asgi_core.Config` for every protocol of the worker.

Each Config field comes from exactly one Gunicorn setting. A value Config rejects stops the worker with a
message naming the Gunicorn setting and its command-line flag, since that is what the user typed.
"""

from __future__ import annotations

import sys
from typing import Any

from asgi_core import Config, ConfigError

from . import _settings
from ._errors import StartupError

_MISSING = object()

#: Config field -> (Gunicorn setting, its command-line flag), for fields named differently or from Gunicorn.
_SOURCES: dict[str, tuple[str, str]] = {
    "protocol": ("protocol", "--protocol"),
    "http_protocols": ("http_protocols", "--http-protocols"),
    "max_connections": ("worker_connections", "--worker-connections"),
    "http1_parser": ("http_parser", "--http-parser"),
    "proxy_protocol": ("proxy_protocol", "--proxy-protocol"),
    "proxy_allow_ips": ("proxy_allow_ips", "--proxy-allow-from"),
    "root_path": ("root_path", "--root-path"),
    "lifespan": ("asgi_lifespan", "--asgi-lifespan"),
    "keep_alive_timeout": ("keepalive", "--keep-alive"),
    "limit_request_line": ("limit_request_line", "--limit-request-line"),
    "limit_request_fields": ("limit_request_fields", "--limit-request-fields"),
    "limit_request_field_size": ("limit_request_field_size", "--limit-request-field_size"),
    "disconnect_grace_period": ("asgi_disconnect_grace_period", "--asgi-disconnect-grace-period"),
    "forwarded_allow_ips": ("forwarded_allow_ips", "--forwarded-allow-ips"),
    "websocket_max_message_size": ("websocket_max_message_size", "--websocket-max-message-size"),
    "http2_max_concurrent_streams": ("http2_max_concurrent_streams", "--http2-max-concurrent-streams"),
    "http2_initial_window_size": ("http2_initial_window_size", "--http2-initial-window-size"),
    "http2_max_frame_size": ("http2_max_frame_size", "--http2-max-frame-size"),
    "http2_max_header_list_size": ("http2_max_header_list_size", "--http2-max-header-list-size"),
    "http2_cleartext": ("http2_cleartext", "--http2-cleartext"),
    "uwsgi_allow_ips": ("uwsgi_allow_ips", "--uwsgi-allow-from"),
}
#: Settings checked by asgi-core outside `Config` (the event loop is chosen before any Config exists).
_NOT_CONFIG = {"loop": ("asgi_loop", "--asgi-loop")}
_SOURCES.update({spec.name: (spec.name, spec.flag) for spec in _settings.SETTINGS})


def setting(cfg: Any, name: str, default: Any = None) -> Any:
    """A Gunicorn setting, or `default` when this Gunicorn (or this command) does not define it."""
    value = getattr(cfg, name, _MISSING)
    return default if value is _MISSING else value


def build_config(cfg: Any) -> Config:
    """The settings of this worker's `asgi_core.Server` and protocols."""
    values: dict[str, Any] = {}
    values["protocol"] = setting(cfg, "protocol", "http") or "http"
    values["http_protocols"] = tuple(setting(cfg, "http_protocols", None) or ("h1",))
    values["max_connections"] = setting(cfg, "worker_connections", 1000)
    parser = setting(cfg, "http_parser", "auto")  # Gunicorn's names: fast (a C parser), python (pure Python)
    values["http1_parser"] = {"fast": "httptools", "python": "h11"}.get(parser, parser)
    proxy_protocol = setting(cfg, "proxy_protocol", "off")
    # A boolean in Gunicorn's older configs; and Gunicorn's own spelling of "no PROXY header" is "off" or None.
    values["proxy_protocol"] = {True: "auto", False: "off", None: "off"}.get(proxy_protocol, proxy_protocol)
    values["proxy_allow_ips"] = tuple(setting(cfg, "proxy_allow_ips", None) or ("127.0.0.1", "::1"))
    root_path = setting(cfg, "root_path", "") or ""
    # A trailing slash is a common way to write a mount point; the ASGI root_path has none.
    values["root_path"] = root_path.rstrip("/") if root_path != "/" else ""
    values["lifespan"] = setting(cfg, "asgi_lifespan", "auto")
    values["keep_alive_timeout"] = float(setting(cfg, "keepalive", 2))
    for name in ("limit_request_line", "limit_request_fields", "limit_request_field_size"):
        values[name] = setting(cfg, name)
    grace = setting(cfg, "asgi_disconnect_grace_period", _MISSING)
    if grace is not _MISSING:
        values["disconnect_grace_period"] = float(grace)
    for name in ("forwarded_allow_ips", "uwsgi_allow_ips"):
        allowed = setting(cfg, name, _MISSING)
        if allowed is not _MISSING:
            values[name] = tuple(allowed)
    ws_max = setting(cfg, "websocket_max_message_size", _MISSING)
    if ws_max is not _MISSING:
        values["websocket_max_message_size"] = ws_max or sys.maxsize  # Gunicorn's 0 means no limit
    for name in (
        "http2_max_concurrent_streams",
        "http2_initial_window_size",
        "http2_max_frame_size",
        "http2_max_header_list_size",
    ):
        value = setting(cfg, name, _MISSING)
        if value is not _MISSING:
            values[name] = value
    h2c = setting(cfg, "http2_cleartext", "off")
    values["http2_cleartext"] = {True: "prior-knowledge", False: "off", None: "off"}.get(h2c, h2c)
    for spec in _settings.SETTINGS:
        value = setting(cfg, spec.name, _MISSING)
        if value is not _MISSING:
            values[spec.name] = value
    values = {name: value for name, value in values.items() if value is not None or _optional(name)}
    try:
        return Config(**values)
    except ConfigError as exc:
        raise startup_error(exc) from None


def startup_error(exc: ConfigError) -> StartupError:
    """A Config error told in the words the user typed: the Gunicorn setting and its command-line flag."""
    gunicorn_name, flag = {**_SOURCES, **_NOT_CONFIG}.get(exc.setting, (exc.setting, ""))
    where = f"{gunicorn_name} ({flag})" if flag else gunicorn_name
    return StartupError(f"invalid value for {where}: {exc.value!r}; accepted: {exc.accepted}")


def _optional(name: str) -> bool:
    return bool(Config.__dataclass_fields__[name].metadata["optional"])
