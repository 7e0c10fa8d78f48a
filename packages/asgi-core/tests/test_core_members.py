"""Enum members bound as module globals for hot code (`asgi_core.members`), and the check that they are bound
to the right names (`misbound`)."""

from __future__ import annotations

import enum
import types

from asgi_core import _cycle, _request_state, members, misbound


class Light(enum.Enum):
    RED = "stop"
    AMBER = "wait"
    GREEN = "go"
    STOP = "stop"  # noqa: PIE796 - an alias of RED on purpose: not a member of its own


def test_members_come_in_definition_order_without_aliases() -> None:
    assert members(Light) == (Light.RED, Light.AMBER, Light.GREEN)


def test_misbound_names_the_globals_that_hold_another_member() -> None:
    module = types.ModuleType("lights")
    red, green, amber = members(Light)  # unpacked out of order
    vars(module).update(RED=red, GREEN=green, AMBER=amber, GO=Light.GREEN)  # GO is no member's name
    assert misbound(module) == ["lights.GREEN is <Light.AMBER: 'wait'>", "lights.AMBER is <Light.GREEN: 'go'>"]
    red, amber, green = members(Light)
    vars(module).update(RED=red, GREEN=green, AMBER=amber)
    assert misbound(module) == []


def test_the_cycles_hot_names_are_their_members() -> None:
    assert misbound(_cycle) == []
    assert misbound(_request_state) == []
