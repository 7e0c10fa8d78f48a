"""Config: every setting validated, every bad value named in the error, proxy trust lists parsed up front."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from typing import Any

import pytest
from asgi_core import Config, ConfigError, describe_settings, parse_networks

SETTINGS = {entry["name"]: entry for entry in describe_settings()}


def _bad_values(entry: dict[str, Any]) -> list[object]:
    """Values each setting must refuse, derived from its declared type and bounds."""
    kind = entry["type"].split("|")[0].strip()
    bad: list[object] = []
    if not entry["optional"]:
        bad.append(None)
    if kind == "str":
        bad += [1, b"auto"]
        if entry["choices"]:
            bad.append("definitely-not-a-choice")
    elif kind == "bool":
        bad += [1, "yes"]
    elif kind == "int":
        bad += ["10", 1.5, True]
    elif kind == "float":
        bad += ["1.0", True, math.nan]
    elif kind.startswith("tuple"):
        bad += ["127.0.0.1", ["127.0.0.1"], (1,)]
    if entry["minimum"] is not None:
        bad.append(entry["minimum"] - 1 if kind == "int" else entry["minimum"] - 0.0001)
    if entry["maximum"] is not None:
        bad.append(entry["maximum"] + 1)
    return bad


CASES = [
    pytest.param(name, value, id=f"{name}={value!r}")
    for name, entry in SETTINGS.items()
    for value in _bad_values(entry)
]


def test_defaults_are_valid() -> None:
    config = Config()
    assert config.lifespan == "auto"
    assert config.max_request_body_size is None
    assert config.header_timeout is not None  # the slowloris deadline is on by default


def test_every_setting_has_help_and_a_rejectable_value() -> None:
    assert {f.name for f in dataclasses.fields(Config)} == set(SETTINGS)
    for name, entry in SETTINGS.items():
        assert entry["help"], name
        assert _bad_values(entry), name


@pytest.mark.parametrize(("name", "value"), CASES)
def test_bad_value_raises_config_error_naming_the_setting(name: str, value: object) -> None:
    settings: dict[str, Any] = {name: value}
    with pytest.raises(ConfigError) as info:
        Config(**settings)
    assert info.value.setting == name
    assert info.value.value is value
    message = str(info.value)
    assert name in message
    assert "accepted:" in message
    assert info.value.accepted in message
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working


def test_choices_are_listed_in_the_error() -> None:
    with pytest.raises(ConfigError, match=r"auto, on, off"):
        Config(lifespan="sometimes")
    with pytest.raises(ConfigError, match=r"prior-knowledge"):
        Config(http2_cleartext="yes")


def test_int_is_accepted_for_float_settings_and_bounds_are_inclusive() -> None:
    config = Config(keep_alive_timeout=0, lifespan_startup_timeout=1, limit_request_line=65536)
    assert config.keep_alive_timeout == 0
    assert config.limit_request_line == 65536
    Config(http2_max_frame_size=16384, limit_request_fields=1, request_body_buffer=1024)


def test_optional_settings_accept_none() -> None:
    config = Config(header_timeout=None, disconnect_grace_period=None, max_request_body_size=None)
    assert config.header_timeout is None
    assert Config(max_request_body_size=0).max_request_body_size == 0


@pytest.mark.parametrize("root_path", ["api", "/api/", "/", "api/"])
def test_bad_root_path(root_path: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(root_path=root_path)
    assert info.value.setting == "root_path"


@pytest.mark.parametrize("root_path", ["", "/api", "/a/b", "/caf\u00e9"])
def test_good_root_path(root_path: str) -> None:
    assert Config(root_path=root_path).root_path == root_path


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.keep_alive_timeout = 1  # type: ignore[misc]


def test_trusted_networks_parsing() -> None:
    config = Config(forwarded_allow_ips=("10.0.0.0/8", " 192.0.2.7 ", "::1", "2001:db8::/32", "10.1.2.3/16"))
    assert config.trusted_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("10.1.0.0/16"),  # host bits are tolerated, as in most proxy configs
    )
    assert Config(forwarded_allow_ips=("10.0.0.1", "*")).trusted_networks is None
    assert Config(forwarded_allow_ips=()).trusted_networks == ()
    assert Config(uwsgi_allow_ips=("*",)).uwsgi_networks is None


@pytest.mark.parametrize("setting", ["forwarded_allow_ips", "uwsgi_allow_ips"])
@pytest.mark.parametrize("entry", ["300.1.1.1", "localhost", "10.0.0.0/33", ""])
def test_bad_network_entry_fails_at_construction(setting: str, entry: str) -> None:
    settings: dict[str, Any] = {setting: ("127.0.0.1", entry)}
    with pytest.raises(ConfigError) as info:
        Config(**settings)
    assert info.value.setting == setting
    assert info.value.value == entry
    assert "CIDR" in str(info.value)


def test_parse_networks_directly() -> None:
    assert parse_networks("x", ("127.0.0.1",)) == (ipaddress.ip_network("127.0.0.1/32"),)
    with pytest.raises(ConfigError, match="invalid value for x"):
        parse_networks("x", ("nope",))


def test_max_head_size_follows_the_limits() -> None:
    small = Config(limit_request_line=100, limit_request_fields=2, limit_request_field_size=50)
    assert small.max_head_size == 100 + 2 * 52 + 4
    unlimited = Config(limit_request_line=0, limit_request_field_size=0, limit_request_fields=1)
    assert unlimited.max_head_size == 65536 + 65538 + 4
