"""Gunicorn settings for what Gunicorn itself lacks, registered by the `gunicorn-asgi` command.

Gunicorn discovers settings as subclasses of its `Setting` class at the moment they are defined, and builds
its command line and config-file vocabulary from them when its `Config` is created. So the classes here are
made by `register()`, which `gunicorn-asgi` calls before Gunicorn parses anything: then they work on that
command's command line and in its `gunicorn.conf.py`. A plain `gunicorn -k egg:gunicorn-asgi#asgi` never calls
it and gets Gunicorn's own settings only; the worker then uses the defaults below.

Defaults and help texts come from `asgi_core.Config`, the one place they are defined.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from asgi_core import Config

SECTION = "gunicorn-asgi"

_CONFIG_FIELDS = {f.name: f for f in fields(Config)}


@dataclass(frozen=True)
class SettingSpec:
    """One setting of ours: its name (as in `gunicorn.conf.py`, and as the `asgi_core.Config` field it sets),
    its command-line flag and how a value is read."""

    name: str
    flag: str
    kind: str  # seconds | seconds_or_off | bytes_or_off | count | flag_off
    help_suffix: str = ""

    @property
    def default(self) -> Any:
        return _CONFIG_FIELDS[self.name].default

    @property
    def help(self) -> str:
        text = str(_CONFIG_FIELDS[self.name].metadata["help"])
        return f"{text} {self.help_suffix}".strip()


#: The settings this package adds; each sets the `asgi_core.Config` field of the same name.
SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("header_timeout", "--header-timeout", "seconds_or_off", "0 disables it."),
    SettingSpec("max_request_body_size", "--max-request-body-size", "bytes_or_off", "0 means no limit."),
    SettingSpec("drain_idle_grace", "--drain-idle-grace", "seconds"),
    SettingSpec("lifespan_startup_timeout", "--lifespan-startup-timeout", "seconds"),
    SettingSpec("lifespan_shutdown_timeout", "--lifespan-shutdown-timeout", "seconds"),
    SettingSpec("websocket_ping_interval", "--websocket-ping-interval", "seconds_or_off", "0 disables pings."),
    SettingSpec("websocket_ping_timeout", "--websocket-ping-timeout", "seconds_or_off", "0 disables it."),
    SettingSpec("websocket_per_message_deflate", "--no-websocket-per-message-deflate", "flag_off"),
    SettingSpec("websocket_max_queue", "--websocket-max-queue", "count"),
    SettingSpec("server_header", "--no-server-header", "flag_off"),
    SettingSpec("date_header", "--no-date-header", "flag_off"),
)

BY_NAME = {spec.name: spec for spec in SETTINGS}

_OFF_WORDS = frozenset({"off", "none", "false", "no"})


def _number(name: str, value: object, *, integer: bool) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    try:
        number = int(value, 0) if integer and isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        unit = "a whole number" if integer else "a number of seconds"
        raise ValueError(f"{name}: expected {unit}, got {value!r}") from None
    if math.isnan(number) or number < 0 or (integer and number != int(number)):
        raise ValueError(f"{name}: expected a number of at least 0, got {value!r}")
    return number


def parse(spec: SettingSpec, value: object) -> Any:
    """A raw value (a command-line string, or whatever a config file assigned) as the Config field wants it."""
    name = spec.name
    if spec.kind == "flag_off":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    if value is None or (isinstance(value, str) and value.strip().lower() in _OFF_WORDS):
        if spec.kind in ("seconds_or_off", "bytes_or_off"):
            return None
        raise ValueError(f"{name}: a value is required, got {value!r}")
    if spec.kind in ("seconds", "seconds_or_off"):
        seconds = _number(name, value, integer=False)
        return None if seconds == 0 and spec.kind == "seconds_or_off" else seconds
    count = int(_number(name, value, integer=True))
    return None if count == 0 and spec.kind == "bytes_or_off" else count


def _validator(spec: SettingSpec) -> Callable[[object], Any]:
    return lambda value: parse(spec, value)


def register() -> list[str]:
    """Define our settings (and any of Gunicorn's this Gunicorn version lacks) as Gunicorn settings.

    Safe to call more than once. Returns the names it added.
    """
    from gunicorn import config as gconfig  # noqa: PLC0415 - registration is the only place that needs it

    known = {setting.name for setting in gconfig.KNOWN_SETTINGS}
    added: list[str] = []
    for spec in SETTINGS:
        if spec.name in known:
            continue
        attrs: dict[str, Any] = {
            "name": spec.name,
            "section": SECTION,
            "cli": [spec.flag],
            "validator": _validator(spec),
            "default": spec.default,
            "desc": spec.help,
        }
        if spec.kind == "flag_off":
            attrs.update(action="store_const", const=False)
        else:
            attrs["meta"] = "NUMBER"
        type(f"ASGI_{spec.name}", (gconfig.Setting,), attrs)
        added.append(spec.name)
    added.extend(_backfill(gconfig, known))
    return added


def _backfill(gconfig: Any, known: set[str]) -> list[str]:
    """Gunicorn settings newer than the oldest Gunicorn we support, defined the same way for older ones, so a
    config written for the newest Gunicorn works on the oldest under `gunicorn-asgi`."""
    added: list[str] = []
    if "websocket_max_message_size" not in known:  # Gunicorn 27.0
        type(
            "ASGI_websocket_max_message_size",
            (gconfig.Setting,),
            {
                "name": "websocket_max_message_size",
                "section": SECTION,
                "cli": ["--websocket-max-message-size"],
                "meta": "INT",
                "type": int,
                "validator": gconfig.validate_pos_int,
                "default": Config.websocket_max_message_size,
                "desc": "Largest WebSocket message in bytes; larger closes with 1009. 0 means no limit.",
            },
        )
        added.append("websocket_max_message_size")
    if "http2_cleartext" not in known:  # Gunicorn 26.2
        type(
            "ASGI_http2_cleartext",
            (gconfig.Setting,),
            {
                "name": "http2_cleartext",
                "section": SECTION,
                "cli": ["--http2-cleartext"],
                "meta": "STRING",
                "validator": _validate_h2c,
                "default": "off",
                "desc": "Cleartext HTTP/2 (h2c) for trusted peers: off, prior-knowledge, upgrade or both.",
            },
        )
        added.append("http2_cleartext")
    return added


def _validate_h2c(value: object) -> str:
    if value is None or value is False:
        return "off"
    if value is True:
        return "prior-knowledge"
    text = str(value).strip().lower()
    if text not in ("off", "prior-knowledge", "upgrade", "both"):
        raise ValueError(f"http2_cleartext: expected off, prior-knowledge, upgrade or both, got {value!r}")
    return text
