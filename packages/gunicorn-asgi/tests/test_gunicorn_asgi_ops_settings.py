"""The operations settings (--max-worker-memory, --access-log-json, --metrics-bind) as Gunicorn settings: from
a command line, from a config file's values, and the errors a bad value gives."""

from __future__ import annotations

from typing import Any

import pytest
from gunicorn.config import Config as GunicornConfig
from gunicorn_asgi import register
from gunicorn_asgi._ops_settings import parse_bind


def gunicorn_config(**values: Any) -> Any:
    register()
    cfg = GunicornConfig()
    for name, value in values.items():
        cfg.set(name, value)
    return cfg


def test_defaults_are_off() -> None:
    cfg = gunicorn_config()
    assert cfg.max_worker_memory == 0
    assert cfg.access_log_json is False
    assert cfg.metrics_bind is None


def test_values_as_a_config_file_writes_them() -> None:
    cfg = gunicorn_config(max_worker_memory=512, access_log_json=True, metrics_bind="127.0.0.1:9100")
    assert (cfg.max_worker_memory, cfg.access_log_json, cfg.metrics_bind) == (512, True, "127.0.0.1:9100")
    assert gunicorn_config(max_worker_memory="256").max_worker_memory == 256
    assert gunicorn_config(access_log_json="false").access_log_json is False
    assert gunicorn_config(metrics_bind="off").metrics_bind is None


def test_command_line_flags() -> None:
    register()
    parser = GunicornConfig().parser()
    args = parser.parse_args(["--max-worker-memory", "300", "--access-log-json", "--metrics-bind", "[::1]:9100"])
    assert (args.max_worker_memory, args.access_log_json, args.metrics_bind) == ("300", True, "[::1]:9100")


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("max_worker_memory", -1, "a whole number of MiB, 0 or more"),
        ("max_worker_memory", "1.5", "a whole number of MiB, 0 or more"),
        ("max_worker_memory", True, "a whole number of MiB, 0 or more"),
        ("access_log_json", "maybe", "True or False"),
        ("metrics_bind", "9100", "HOST:PORT with a port from 1 to 65535"),
        ("metrics_bind", "localhost:0", "HOST:PORT with a port from 1 to 65535"),
        ("metrics_bind", "localhost:70000", "HOST:PORT with a port from 1 to 65535"),
        ("metrics_bind", "::1:9100", "HOST:PORT with a port from 1 to 65535"),
        ("metrics_bind", 9100, "HOST:PORT with a port from 1 to 65535"),
    ],
)
def test_bad_values_name_the_setting_and_what_it_accepts(name: str, value: object, accepted: str) -> None:
    flag = "--" + name.replace("_", "-")
    with pytest.raises(ValueError, match=rf"invalid value for {name} \({flag}\): .*; accepted: {accepted}"):
        gunicorn_config(**{name: value})


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_bind("[::1]:9100") == ("::1", 9100)
    assert parse_bind("metrics.internal:80") == ("metrics.internal", 80)
    assert parse_bind(None) is None
