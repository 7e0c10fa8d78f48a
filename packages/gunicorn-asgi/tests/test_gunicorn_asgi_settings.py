"""Gunicorn settings -> asgi_core.Config, our added settings, and errors that name what the user typed."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from gunicorn.config import Config as GunicornConfig
from gunicorn_asgi import SETTINGS, StartupError, register
from gunicorn_asgi._config_map import build_config
from gunicorn_asgi._settings import BY_NAME, parse


def gunicorn_config(**values: Any) -> Any:
    register()  # idempotent: defines our settings once per process
    cfg = GunicornConfig()
    for name, value in values.items():
        cfg.set(name, value)
    return cfg


def test_gunicorn_settings_map_onto_the_protocol_config() -> None:
    cfg = gunicorn_config(
        root_path="/api/",
        asgi_lifespan="on",
        keepalive=9,
        limit_request_line=1000,
        limit_request_fields=50,
        limit_request_field_size=2000,
        asgi_disconnect_grace_period=0,
        forwarded_allow_ips="10.0.0.0/8,192.0.2.1",
        uwsgi_allow_ips="*",
        websocket_max_message_size=0,
        http2_max_concurrent_streams=7,
        http2_initial_window_size=1 << 20,
        http2_max_frame_size=32768,
        http2_max_header_list_size=4096,
        http2_cleartext="upgrade",
        worker_connections=77,
        http_protocols="h2,h1",
        proxy_protocol="v2",
        proxy_allow_ips="10.1.0.0/16",
    )
    config = build_config(cfg)
    assert config.root_path == "/api"
    assert config.lifespan == "on"
    assert config.keep_alive_timeout == 9.0
    assert (config.limit_request_line, config.limit_request_fields, config.limit_request_field_size) == (
        1000,
        50,
        2000,
    )
    assert config.disconnect_grace_period == 0.0
    assert config.forwarded_allow_ips == ("10.0.0.0/8", "192.0.2.1")
    assert config.uwsgi_networks is None  # "*": every peer
    assert config.websocket_max_message_size == sys.maxsize  # Gunicorn's 0: no limit
    assert config.http2_max_concurrent_streams == 7
    assert config.http2_initial_window_size == 1 << 20
    assert config.http2_max_frame_size == 32768
    assert config.http2_max_header_list_size == 4096
    assert config.http2_cleartext == "upgrade"
    assert config.max_connections == 77
    assert config.http_protocols == ("h2", "h1")
    assert config.proxy_protocol == "v2"
    assert config.proxy_allow_ips == ("10.1.0.0/16",)


def test_our_settings_map_and_zero_disables() -> None:
    cfg = gunicorn_config(
        header_timeout="0",
        max_request_body_size="1048576",
        lifespan_startup_timeout="2.5",
        lifespan_shutdown_timeout=4,
        websocket_ping_interval="off",
        websocket_ping_timeout="7",
        websocket_per_message_deflate=False,
        websocket_max_queue="8",
        server_header=False,
        date_header="false",
    )
    config = build_config(cfg)
    assert config.header_timeout is None
    assert config.max_request_body_size == 1048576
    assert config.lifespan_startup_timeout == 2.5
    assert config.lifespan_shutdown_timeout == 4.0
    assert config.websocket_ping_interval is None
    assert config.websocket_ping_timeout == 7.0
    assert config.websocket_per_message_deflate is False
    assert config.websocket_max_queue == 8
    assert config.server_header is False
    assert config.date_header is False


def test_defaults_are_the_protocol_defaults_with_or_without_our_settings() -> None:
    assert build_config(gunicorn_config()).header_timeout == BY_NAME["header_timeout"].default

    class PlainGunicorn:
        """A Gunicorn config without our settings, as under `gunicorn -k gunicorn_asgi.Worker`."""

        root_path = ""
        keepalive = 2
        limit_request_line = 4094
        limit_request_fields = 100
        limit_request_field_size = 8190

    config = build_config(PlainGunicorn())
    assert config.header_timeout == 10.0
    assert config.max_request_body_size is None
    assert config.keep_alive_timeout == 2.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"root_path": "api"}, "invalid value for root_path (--root-path): 'api'"),
        ({"limit_request_fields": 40000}, "invalid value for limit_request_fields (--limit-request-fields)"),
        ({"http2_max_header_list_size": 10}, "invalid value for http2_max_header_list_size (--http2-max-header"),
        ({"websocket_max_queue": 0}, "invalid value for websocket_max_queue (--websocket-max-queue): 0"),
    ],
)
def test_values_the_protocol_config_rejects_name_the_gunicorn_setting(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(StartupError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_config(gunicorn_config(**values))


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("header_timeout", "soon", "header_timeout: expected a number of seconds"),
        ("header_timeout", "-1", "at least 0"),
        ("header_timeout", "nan", "at least 0"),
        ("lifespan_startup_timeout", "off", "a value is required"),
        ("max_request_body_size", "1.5", "expected a whole number"),
        ("server_header", "maybe", "expected True or False"),
    ],
)
def test_bad_values_are_refused_when_read(name: str, value: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse(BY_NAME[name], value)
    # And through Gunicorn's own config, as a config file or the command line would set them.
    with pytest.raises(ValueError, match=error):
        gunicorn_config(**{name: value})


def test_every_setting_is_registered_with_its_flag_and_help() -> None:
    register()
    cfg = GunicornConfig()
    parser = cfg.parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for spec in SETTINGS:
        assert spec.name in cfg.settings
        assert spec.flag in flags
        assert cfg.settings[spec.name].desc
    args = parser.parse_args(["--header-timeout", "3", "--no-server-header"])
    assert args.header_timeout == "3"
    assert args.server_header is False


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("asgi_lifespan", "maybe", "auto, on, off"),
        ("asgi_loop", "bogus", "auto, asyncio, uvloop"),
        ("http2_cleartext", "yes", "off, prior-knowledge, upgrade, both"),
    ],
)
def test_a_bad_choice_lists_what_the_setting_accepts(name: str, value: str, accepted: str) -> None:
    with pytest.raises(
        ValueError, match=rf"invalid value for {name} \(--[a-z0-9-]+\): '{value}'; accepted: {accepted}"
    ):
        gunicorn_config(**{name: value})
    assert gunicorn_config(**{name: accepted.split(", ")[-1]})  # a listed value is taken
