"""Registry: plugins found by entry point, loaded only when asked for, one broken plugin never hiding the rest."""

from __future__ import annotations

import asyncio
import logging

import pytest
from asgi_core import PROTOCOLS_GROUP, UPGRADES_GROUP, ProxyHeader, Registry, ServerContext, UpgradeRequest
from asgi_core import _registry as registry_module


class FakeEntryPoint:
    """Quacks like `importlib.metadata.EntryPoint`; counts loads so that laziness can be checked."""

    def __init__(self, name: str, group: str, target: object = None, error: Exception | None = None) -> None:
        self.name = name
        self.group = group
        self.value = f"fake_module:{name}"
        self._target = target
        self._error = error
        self.loads = 0

    def load(self) -> object:
        self.loads += 1
        if self._error is not None:
            raise self._error
        return self._target


class FakeProtocol:
    name: str = "fake"
    alpn: tuple[str, ...] = ("fake/1",)

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        return asyncio.Protocol()


class FakeUpgrade:
    token = "WebSocket"

    def accepts(self, request: UpgradeRequest) -> bool:
        return True

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        return asyncio.Protocol()


def install(monkeypatch: pytest.MonkeyPatch, *entry_points: FakeEntryPoint) -> None:
    def fake_entry_points(*, group: str) -> list[FakeEntryPoint]:
        return [ep for ep in entry_points if ep.group == group]

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)


def test_discovery_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = FakeProtocol()
    proto_ep = FakeEntryPoint("fake", PROTOCOLS_GROUP, plugin)
    upgrade_ep = FakeEntryPoint("WebSocket", UPGRADES_GROUP, FakeUpgrade)  # a class: instantiated on load
    install(monkeypatch, proto_ep, upgrade_ep)
    registry = Registry()
    assert registry.protocol_names() == ["fake"]
    assert registry.upgrade_tokens() == ["websocket"]
    assert (proto_ep.loads, upgrade_ep.loads) == (0, 0)  # listing names imports nothing
    assert registry.protocol("fake") is plugin
    assert registry.protocol("fake") is plugin
    assert proto_ep.loads == 1  # loaded once, then kept
    assert upgrade_ep.loads == 0
    handler = registry.upgrade("WEBSOCKET")  # tokens are case-insensitive
    assert isinstance(handler, FakeUpgrade)
    assert registry.upgrade("websocket") is handler
    assert upgrade_ep.loads == 1
    assert registry.protocol("missing") is None
    assert registry.upgrade("h2c") is None
    assert registry.errors == {}


def test_broken_plugin_is_reported_without_breaking_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = FakeEntryPoint("good", PROTOCOLS_GROUP, FakeProtocol())
    broken = FakeEntryPoint("broken", PROTOCOLS_GROUP, error=ModuleNotFoundError("No module named 'gone'"))
    crashing = FakeEntryPoint("h2c", UPGRADES_GROUP, error=RuntimeError("import-time crash"))
    install(monkeypatch, broken, good, crashing)
    registry = Registry()
    assert registry.protocol_names() == ["broken", "good"]
    with caplog.at_level(logging.WARNING, "asgi_core.error"):
        assert registry.protocol("broken") is None
        assert registry.upgrade("h2c") is None
    assert registry.protocol("good") is good._target
    assert registry.errors == {
        "broken": "ModuleNotFoundError: No module named 'gone'",
        "h2c": "RuntimeError: import-time crash",
    }
    assert "could not load plugin 'broken'" in caplog.text
    assert registry.protocol("broken") is None  # not retried on every connection
    assert broken.loads == 1


def test_plugin_class_failing_to_instantiate_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        def __init__(self) -> None:
            raise ValueError("bad settings")

    install(monkeypatch, FakeEntryPoint("x", PROTOCOLS_GROUP, Exploding))
    registry = Registry()
    assert registry.protocol("x") is None
    assert registry.errors["x"] == "ValueError: bad settings"


def test_programmatic_registration_without_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeEntryPoint("fake", PROTOCOLS_GROUP, object()))
    registry = Registry(discover=False)
    assert registry.protocol_names() == []
    plugin, handler = FakeProtocol(), FakeUpgrade()
    registry.add_protocol(plugin)
    registry.add_upgrade(handler)
    assert registry.protocol("fake") is plugin
    assert registry.upgrade("websocket") is handler
    assert registry.upgrade_tokens() == ["websocket"]


def test_registered_plugin_wins_over_an_entry_point_of_the_same_name(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = FakeEntryPoint("fake", PROTOCOLS_GROUP, object())
    install(monkeypatch, entry)
    registry = Registry()
    plugin = FakeProtocol()
    registry.add_protocol(plugin)
    assert registry.protocol("fake") is plugin
    assert entry.loads == 0
