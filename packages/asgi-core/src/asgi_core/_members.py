"""Enum members as module globals, for hot code: the one way this project does it (docs/discussion/design.md,
"Speed").

On Python 3.10 and 3.11, `EnumType` defines `__getattr__`, which routes every class attribute lookup through a
slow hook: `State.OPEN` costs about 75 ns there, a module global about 10. Hot modules therefore bind each
state enum's members to globals of the same names, in one statement right below the class:

    class Phase(enum.Enum):
        OPEN = "open"
        CLOSED = "closed"

    OPEN, CLOSED = members(Phase)

and compare with those (`phase is OPEN`); cold code writes `Phase.OPEN`. The names must follow the definition
order: a count that does not match fails at import, an order that does not is caught by `misbound`, which each
package's tests run over its hot modules. On Python 3.12+ and in mypyc-compiled modules (which load `Phase.OPEN`
as a static) the globals cost nothing more than the members themselves.
"""

from __future__ import annotations

import enum
from types import ModuleType
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)


def members(enum_class: type[E]) -> tuple[E, ...]:
    """The members of `enum_class` in definition order (aliases left out), to unpack into globals."""
    return tuple(enum_class)


def misbound(module: ModuleType) -> list[str]:
    """The globals of `module` named after a member of an enum that hold another member of it (a `members`
    unpacking out of order): empty when every such name holds its own member."""
    wrong = []
    for name, value in vars(module).items():
        if isinstance(value, enum.Enum):
            own = type(value).__members__.get(name)
            if own is not None and own is not value:
                wrong.append(f"{module.__name__}.{name} is {value!r}")
    return wrong
