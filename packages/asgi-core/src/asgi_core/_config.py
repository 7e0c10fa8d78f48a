"""Protocol-level settings: one frozen, validated dataclass shared by every protocol package.

Each field carries its documentation and its bounds in `metadata`, so validation, error messages and the
settings reference in docs/ all come from this one place and cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from ._errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LIFESPAN_MODES = ("auto", "on", "off")
HTTP2_CLEARTEXT_MODES = ("off", "prior-knowledge", "upgrade", "both")
PROXY_PROTOCOL_MODES = ("off", "v1", "v2", "auto")
HTTP1_PARSERS = ("auto", "httptools", "h11")
MiB = 1024 * 1024


def _setting(
    default: Any,
    help: str,  # noqa: A002 - mirrors argparse's name for the same thing
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    optional: bool = False,
) -> Any:
    return field(
        default=default,
        metadata={"help": help, "minimum": minimum, "maximum": maximum, "choices": choices, "optional": optional},
    )


@dataclass(frozen=True)
class Config:
    """Settings of the protocol layer, independent of Gunicorn. Invalid values raise `ConfigError`."""

    root_path: str = _setting(
        "",
        "Mount point of the application behind a proxy, like WSGI's SCRIPT_NAME. Requests whose path already "
        "starts with it keep their path; others get it prefixed, so `path` always includes `root_path`.",
    )
    protocol: str = _setting(
        "http",
        "The protocol every connection speaks from its first byte: `http` (HTTP/1.1, and the versions in "
        "`http_protocols`), `uwsgi`, or any installed protocol plugin's name.",
    )
    http_protocols: tuple[str, ...] = _setting(
        ("h1",),
        "HTTP versions served, most preferred first: `h1`, `h2` (or any installed plugin's name). Over TLS "
        "they are offered by ALPN in this order; in cleartext HTTP/2 needs `http2_cleartext`.",
    )
    max_connections: int = _setting(
        1000,
        "Most connections one server holds open at once (Gunicorn's worker_connections). Past it the server stops "
        "accepting and further clients wait in the listening socket's backlog; none is accepted only to be refused.",
        minimum=1,
    )
    proxy_protocol: str = _setting(
        "off",
        "Read a PROXY protocol header (HAProxy, load balancers) from peers in `proxy_allow_ips`: `v1`, `v2`, "
        "`auto` (either) or `off`. The client and server addresses it announces replace the socket's.",
        choices=PROXY_PROTOCOL_MODES,
    )
    proxy_allow_ips: tuple[str, ...] = _setting(
        ("127.0.0.1", "::1"),
        "Peers (addresses or CIDR ranges, `*` for all) whose PROXY header is read; other peers' bytes are "
        "served as they are.",
    )
    lifespan: str = _setting(
        "auto",
        "ASGI lifespan protocol: `auto` runs it and carries on if the app does not support it, `on` requires "
        "it, `off` never runs it.",
        choices=LIFESPAN_MODES,
    )
    lifespan_startup_timeout: float = _setting(
        60.0, "Seconds the app may take to complete lifespan startup.", minimum=0.001
    )
    lifespan_shutdown_timeout: float = _setting(
        30.0, "Seconds the app may take to complete lifespan shutdown.", minimum=0.001
    )
    http1_parser: str = _setting(
        "auto",
        "HTTP/1.1 request parser: `httptools` (llhttp, fast), `h11` (the pure-Python reference), or `auto` "
        "(httptools when installed).",
        choices=HTTP1_PARSERS,
    )
    keep_alive_timeout: float = _setting(
        5.0, "Seconds an idle keep-alive connection is held open waiting for the next request.", minimum=0
    )
    header_timeout: float | None = _setting(
        10.0,
        "Seconds a client has to send a whole request head once it started one (or once it connected). Stops "
        "clients that trickle bytes (slowloris). `None` disables it.",
        minimum=0.001,
        optional=True,
    )
    limit_request_line: int = _setting(
        4094,
        "Largest request line in bytes; longer gets 414. 0 means no limit of our own.",
        minimum=0,
        maximum=65536,
    )
    limit_request_fields: int = _setting(
        100, "Most header fields in one request; more gets 431.", minimum=1, maximum=32768
    )
    limit_request_field_size: int = _setting(
        8190,
        "Largest header field (name and value) in bytes; larger gets 431. 0 means no limit of our own.",
        minimum=0,
        maximum=1 * MiB,
    )
    max_request_body_size: int | None = _setting(
        None, "Largest request body in bytes; larger gets 413. `None` means no limit.", minimum=0, optional=True
    )
    request_body_buffer: int = _setting(
        64 * 1024,
        "Bytes of request body buffered for an app that reads slower than the client sends; past it the "
        "server stops reading from that client until the app catches up.",
        minimum=1024,
    )
    write_buffer_high_water: int = _setting(
        64 * 1024, "Bytes queued for a client before a sending app waits for them to drain.", minimum=1024
    )
    drain_idle_grace: float = _setting(
        3.0,
        "Seconds an idle keep-alive connection stays open once the server starts draining (graceful stop, "
        "max_requests, reload): a request its client sends meanwhile is still served, with `Connection: close`, "
        "instead of meeting a closed connection. Capped by the graceful timeout.",
        minimum=0,
    )
    disconnect_grace_period: float | None = _setting(
        5.0,
        "Seconds an app still handling a request whose client went away (before the response completed) gets "
        "to notice `http.disconnect` before its task is cancelled. `None` never cancels.",
        minimum=0,
        optional=True,
    )
    forwarded_allow_ips: tuple[str, ...] = _setting(
        ("127.0.0.1", "::1"),
        "Peers (addresses or CIDR ranges, `*` for all) whose X-Forwarded-For, X-Forwarded-Proto and "
        "Forwarded headers are trusted for the client address and scheme.",
    )
    server_header: bool = _setting(True, "Send a `Server` header unless the app sends one.")
    date_header: bool = _setting(True, "Send a `Date` header unless the app sends one.")
    websocket_max_message_size: int = _setting(
        16 * MiB, "Largest WebSocket message in bytes, after decompression; larger closes with 1009.", minimum=1
    )
    websocket_ping_interval: float | None = _setting(
        20.0, "Seconds between server pings on idle WebSockets. `None` disables.", minimum=0.001, optional=True
    )
    websocket_ping_timeout: float | None = _setting(
        20.0, "Seconds to wait for a pong before closing. `None` disables.", minimum=0.001, optional=True
    )
    websocket_per_message_deflate: bool = _setting(True, "Negotiate permessage-deflate when offered.")
    websocket_max_queue: int = _setting(
        32, "WebSocket messages buffered for an app before the server stops reading.", minimum=1
    )
    http2_max_concurrent_streams: int = _setting(
        100, "Most concurrent HTTP/2 streams per connection.", minimum=1, maximum=2**31 - 1
    )
    http2_initial_window_size: int = _setting(
        65535, "HTTP/2 initial flow-control window in bytes.", minimum=1, maximum=2**31 - 1
    )
    http2_max_frame_size: int = _setting(
        16384, "Largest HTTP/2 frame payload we accept.", minimum=16384, maximum=2**24 - 1
    )
    http2_max_header_list_size: int = _setting(65536, "Largest decoded HTTP/2 header list in bytes.", minimum=1024)
    send_timeout: float = _setting(
        30.0,
        "Seconds a connection may stay unable to write because its client reads nothing (its write buffer full) "
        "before it is cut, and an HTTP/2 stream may hold data its peer's flow-control window admits none of "
        "before it is reset. Memory stays bounded either way; this frees the connection.",
        minimum=0.001,
    )
    http2_cleartext: str = _setting(
        "off",
        "Cleartext HTTP/2 (h2c) for peers in `forwarded_allow_ips`: by the connection preface "
        "(`prior-knowledge`), by `Upgrade: h2c` (`upgrade`), `both`, or `off`.",
        choices=HTTP2_CLEARTEXT_MODES,
    )
    uwsgi_allow_ips: tuple[str, ...] = _setting(
        ("127.0.0.1", "::1"),
        "Peers (addresses or CIDR ranges, `*` for all) allowed to send uWSGI requests; Unix-socket peers are "
        "always allowed.",
    )

    def __post_init__(self) -> None:
        for setting in fields(self):
            _validate(setting.name, getattr(self, setting.name), setting.type, setting.metadata)
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            raise ConfigError("root_path", self.root_path, "empty, or a path starting and not ending with '/'")
        # Parse now so that a bad entry fails at startup, not at the first request.
        _ = self.trusted_networks, self.uwsgi_networks, self.proxy_networks

    @cached_property
    def trusted_networks(self) -> tuple[Network, ...] | None:
        """Parsed `forwarded_allow_ips`; `None` means every peer is trusted."""
        return parse_networks("forwarded_allow_ips", self.forwarded_allow_ips)

    @cached_property
    def uwsgi_networks(self) -> tuple[Network, ...] | None:
        """Parsed `uwsgi_allow_ips`; `None` means every peer is allowed."""
        return parse_networks("uwsgi_allow_ips", self.uwsgi_allow_ips)

    @cached_property
    def proxy_networks(self) -> tuple[Network, ...] | None:
        """Parsed `proxy_allow_ips`; `None` means every peer may send a PROXY header."""
        return parse_networks("proxy_allow_ips", self.proxy_allow_ips)

    @cached_property
    def max_head_size(self) -> int:
        """Upper bound on a request head, derived from the line and field limits (asked for on every
        connection: cached, it is read as the other fields are, not computed from four of them)."""
        line = self.limit_request_line or 65536
        field_size = self.limit_request_field_size or 65536
        return line + self.limit_request_fields * (field_size + 2) + 4


def parse_networks(setting: str, entries: tuple[str, ...]) -> tuple[Network, ...] | None:
    """Addresses and CIDR ranges as networks; `None` for `*`, which admits every peer."""
    if any(entry.strip() == "*" for entry in entries):
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(setting, entry, "IP addresses or CIDR ranges such as 10.0.0.0/8, or '*'") from None
    return tuple(networks)


_TYPE_NAMES = {"str": str, "float": float, "int": int, "bool": bool}
_OFF_WORDS = frozenset({"off", "none", "false", "no"})


def parse_setting(name: str, raw: object, *, zero_is_off: bool = False) -> Any:
    """A setting's value as written on a command line or in a config file, as the `Config` field wants it.

    Numbers may be strings ("2.5", "1048576"); a setting that may be None takes off/none/false/no for None,
    and 0 too with `zero_is_off`; booleans take true/false. Raises `ValueError` naming the setting. The value's
    bounds and choices are checked by `Config` itself.
    """
    setting = _FIELDS[name]
    base = str(setting.type).split("|")[0].strip()
    if base == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ValueError(f"{name}: expected True or False, got {raw!r}")
    if base == "str" and isinstance(raw, str):
        return raw.strip()  # the choices are Config's to check
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _OFF_WORDS):
        if setting.metadata["optional"]:
            return None
        raise ValueError(f"{name}: a value is required, got {raw!r}")
    if base not in ("int", "float"):
        return raw
    number = _number(name, raw, integer=base == "int")
    if zero_is_off and number == 0 and setting.metadata["optional"]:
        return None
    return int(number) if base == "int" else number


def _number(name: str, value: object, *, integer: bool) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got {value!r}")  # noqa: TRY004 - a bad value, as the rest
    try:
        number = int(value, 0) if integer and isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        unit = "a whole number" if integer else "a number of seconds"
        raise ValueError(f"{name}: expected {unit}, got {value!r}") from None
    if math.isnan(number) or number < 0 or (integer and number != int(number)):
        raise ValueError(f"{name}: expected a number of at least 0, got {value!r}")
    return number


def _validate(name: str, value: object, annotation: object, meta: Any) -> None:
    if value is None:
        if not meta["optional"]:
            raise ConfigError(name, value, "a value (this setting cannot be None)")
        return
    base = str(annotation).split("|")[0].strip()
    if base.startswith("tuple"):
        if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
            raise ConfigError(name, value, "a tuple of strings")
        return
    expected = _TYPE_NAMES[base]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(name, value, f"a value of type {base}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(name, value, ", ".join(meta["choices"]))
    low, high = meta["minimum"], meta["maximum"]
    # NaN compares false with every bound, so it would slip through as a timeout that never fires right.
    if value != value or (low is not None and value < low) or (high is not None and value > high):  # noqa: PLR0124
        bounds = f"at least {low}" if high is None else f"{low} to {high}"
        raise ConfigError(name, value, f"a number {bounds}")


def describe_settings() -> list[dict[str, Any]]:
    """Name, type, default and help of every setting, for generated documentation."""
    return [
        {"name": f.name, "type": str(f.type), "default": f.default, **dict(f.metadata)} for f in fields(Config)
    ]


_FIELDS = {f.name: f for f in fields(Config)}
