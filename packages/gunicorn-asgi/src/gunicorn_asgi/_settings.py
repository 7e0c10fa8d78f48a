"""Gunicorn settings for what Gunicorn itself lacks, registered by the `gunicorn-asgi` command.

Gunicorn discovers settings as subclasses of its `Setting` class at the moment they are defined, and builds
its command line and config-file vocabulary from them when its `Config` is created. So the classes here are
made by `register()`, which `gunicorn-asgi` calls before Gunicorn parses anything: then they work on that
command's command line and in its `gunicorn.conf.py`. A plain `gunicorn -k egg:gunicorn-asgi#asgi` never calls
it and gets Gunicorn's own settings only; the worker then uses the defaults below.

Defaults and help texts come from `asgi_core.Config`, the one place they are defined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from asgi_core import LOOPS, Config, Registry, parse_setting

from ._ops_settings import register_ops

SECTION = "gunicorn-asgi"

_CONFIG_FIELDS = {f.name: f for f in fields(Config)}


@dataclass(frozen=True)
class SettingSpec:
    """One setting of ours: its name (as in `gunicorn.conf.py`, and as the `asgi_core.Config` field it sets),
    its command-line flag, and whether 0 turns it off."""

    name: str
    flag: str
    help_suffix: str = ""
    zero_is_off: bool = False

    @property
    def default(self) -> Any:
        return _CONFIG_FIELDS[self.name].default

    @property
    def is_flag(self) -> bool:
        """A boolean that is on by default: its flag (`--no-...`) turns it off."""
        return _CONFIG_FIELDS[self.name].type == "bool"

    @property
    def is_text(self) -> bool:
        return _CONFIG_FIELDS[self.name].type == "str"

    @property
    def help(self) -> str:
        text = str(_CONFIG_FIELDS[self.name].metadata["help"])
        return f"{text} {self.help_suffix}".strip()


#: The settings this package adds; each sets the `asgi_core.Config` field of the same name.
SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("header_timeout", "--header-timeout", "0 disables it.", zero_is_off=True),
    SettingSpec("max_request_body_size", "--max-request-body-size", "0 means no limit.", zero_is_off=True),
    SettingSpec("drain_idle_grace", "--drain-idle-grace"),
    SettingSpec("send_timeout", "--send-timeout"),
    SettingSpec("lifespan_startup_timeout", "--lifespan-startup-timeout"),
    SettingSpec("lifespan_shutdown_timeout", "--lifespan-shutdown-timeout"),
    SettingSpec("websocket_ping_interval", "--websocket-ping-interval", "0 disables pings.", zero_is_off=True),
    SettingSpec("websocket_ping_timeout", "--websocket-ping-timeout", "0 disables it.", zero_is_off=True),
    SettingSpec("websocket_per_message_deflate", "--no-websocket-per-message-deflate"),
    SettingSpec("websocket_max_queue", "--websocket-max-queue"),
    SettingSpec("server_header", "--no-server-header"),
    SettingSpec("date_header", "--no-date-header"),
)
#: Gunicorn settings newer than the oldest Gunicorn we support (websocket_max_message_size: 27.0,
#: http2_cleartext: 26.2), defined the same way for older ones, so that a config written for the newest Gunicorn
#: works on the oldest under `gunicorn-asgi`.
BACKFILL: tuple[SettingSpec, ...] = (
    SettingSpec("websocket_max_message_size", "--websocket-max-message-size", "0 means no limit."),
    SettingSpec("http2_cleartext", "--http2-cleartext"),
)
BY_NAME = {spec.name: spec for spec in (*SETTINGS, *BACKFILL)}


def parse(spec: SettingSpec, value: object) -> Any:
    """A raw value (a command-line string, or whatever a config file assigned) as the Config field wants it."""
    return parse_setting(spec.name, value, zero_is_off=spec.zero_is_off)


def _validator(spec: SettingSpec) -> Callable[[object], Any]:
    return lambda value: parse(spec, value)


def register() -> list[str]:
    """Define our settings (and any of Gunicorn's this Gunicorn version lacks) as Gunicorn settings.

    Safe to call more than once. Returns the names it added.
    """
    from gunicorn import config as gconfig  # noqa: PLC0415 - registration is the only place that needs it

    known = {setting.name for setting in gconfig.KNOWN_SETTINGS}
    added: list[str] = []
    for spec in (*SETTINGS, *BACKFILL):
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
        if spec.is_flag:
            attrs.update(action="store_const", const=False)
        else:
            attrs["meta"] = "STRING" if spec.is_text else "NUMBER"
        type(f"ASGI_{spec.name}", (gconfig.Setting,), attrs)
        added.append(spec.name)
    _name_the_choices(gconfig)
    _accept_installed_protocols(gconfig)
    return added + register_ops(gconfig, known)


def _accept_installed_protocols(gconfig: Any) -> None:
    """Gunicorn's `--http-protocols` knows h1 and h2; any protocol plugin installed for asgi-core's registry (an
    HTTP/3 package, say) is one the worker can serve, so its name is accepted too (unknown names still fail)."""
    valid = getattr(gconfig, "VALID_HTTP_PROTOCOLS", None)
    if valid is not None:
        gconfig.VALID_HTTP_PROTOCOLS = frozenset(valid) | frozenset(Registry(discover=True).protocol_names())


#: Gunicorn's choice settings that the worker reads, and what each accepts: Gunicorn's own messages for them
#: ("Invalid ASGI lifespan: maybe") do not say.
_CHOICES: dict[str, tuple[str, ...]] = {
    "asgi_loop": LOOPS,
    "asgi_lifespan": _CONFIG_FIELDS["lifespan"].metadata["choices"],
    "http2_cleartext": _CONFIG_FIELDS["http2_cleartext"].metadata["choices"],
    "http_parser": ("auto", "fast", "python"),
}


def _name_the_choices(gconfig: Any) -> None:
    for setting in gconfig.KNOWN_SETTINGS:
        accepted = _CHOICES.get(setting.name)
        original = getattr(setting, "validator", None)
        if accepted is None or original is None or getattr(original, "names_choices", False):
            continue
        setting.validator = staticmethod(_choice_validator(setting.name, setting.cli[0], accepted, original))


def _choice_validator(
    name: str, flag: str, accepted: tuple[str, ...], original: Callable[[object], Any]
) -> Callable[[object], Any]:
    def validate(value: object) -> Any:
        if isinstance(value, str) and value.strip().lower() not in accepted:
            raise ValueError(f"invalid value for {name} ({flag}): {value!r}; accepted: {', '.join(accepted)}")
        return original(value)

    validate.names_choices = True  # type: ignore[attr-defined]
    return validate
