"""Generate docs/reference/settings.md from the code, so the settings reference cannot drift from it.

Source of truth: `asgi_core.describe_settings()` (every field of `asgi_core.Config`, with its type, default,
bounds, choices and help), plus, when gunicorn-asgi is installed, the Gunicorn setting that fills each field
under that worker and Gunicorn's default for it (see `gunicorn_sources`).

The page is generated and committed, so that links to it work when reading the sources too;
tests/test_docs_flags.py fails when the committed page differs from `render()`. It is written by

- `python docs/gen_settings.py` (what `python3 dev.py docs` runs before `mkdocs build --strict`), and
- mkdocs itself, which loads this file as a hook (mkdocs.yml `hooks:`) and calls `on_pre_build` before every
  build, so a bare `mkdocs build` or `mkdocs serve` regenerates it too.

The file is rewritten only when its text changes, so `mkdocs serve` does not rebuild in a loop.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgi_core import describe_settings

OUTPUT = Path(__file__).resolve().parent / "reference" / "settings.md"

#: Sections in page order. A setting belongs to the first section whose prefix its name starts with; the
#: general section ("" prefix) takes the rest, so a new setting always lands somewhere.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "",
        "General",
        "The application, HTTP framing and timeouts, limits and proxies: read by asgi-core's request "
        "cycle and lifespan and by every HTTP-like protocol.",
    ),
    ("websocket_", "WebSocket", "Read by the WebSocket protocol package (asgi-wsproto)."),
    ("http2_", "HTTP/2", "Read by the HTTP/2 protocol package (asgi-h2)."),
    ("uwsgi_", "uWSGI", "Read by the uWSGI protocol package (asgi-uwsgi)."),
)

_UNITS = (("MiB", 1024 * 1024), ("KiB", 1024))


def format_default(value: object) -> str:
    """A default as it would be written in Python, in backticks."""
    if isinstance(value, tuple):
        return "`(" + ", ".join(repr(item) for item in value) + (",)`" if len(value) == 1 else ")`")
    return f"`{value!r}`"


def _with_unit(value: object, help_text: str) -> str:
    text = format_default(value)
    if isinstance(value, int) and not isinstance(value, bool) and "bytes" in help_text.lower():
        for unit, size in _UNITS:
            if value >= size and value % size == 0:
                return f"{text} ({value // size} {unit})"
    return text


def _number(value: float) -> str:
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _accepted(setting: dict[str, Any]) -> str:
    kind = setting["type"].split("|")[0].strip()
    low, high, choices = setting.get("minimum"), setting.get("maximum"), setting.get("choices")
    if choices:
        text = "one of " + ", ".join(f"`{choice}`" for choice in choices)
    elif kind == "bool":
        text = "`True` or `False`"
    elif kind.startswith("tuple"):
        text = "a tuple of strings"
    elif low is not None and high is not None:
        text = f"{kind} from {_number(low)} to {_number(high)}"
    elif low is not None:
        text = f"{kind}, at least {_number(low)}"
    elif high is not None:
        text = f"{kind}, at most {_number(high)}"
    else:
        text = f"any {kind}"
    if setting.get("optional"):
        text += ", or `None`"
    return text


def _section_of(name: str) -> str:
    by_prefix = sorted(SECTIONS, key=lambda section: -len(section[0]))  # the catch-all "" is tried last
    return next(title for prefix, title, _ in by_prefix if name.startswith(prefix))


def _anchor(name: str) -> str:
    return name.replace("_", "-")


@dataclass(frozen=True)
class GunicornSource:
    """The Gunicorn setting that fills one Config field under the gunicorn-asgi worker."""

    setting: str  # its name in gunicorn.conf.py
    flag: str  # its command-line flag
    added: bool  # defined by gunicorn-asgi, so present only under the `gunicorn-asgi` command
    default: object  # the default that applies under Gunicorn, or _UNKNOWN
    note: str = ""  # how the value is read, when that differs from the Config field


_UNKNOWN = object()


def gunicorn_sources() -> dict[str, GunicornSource] | None:
    """Config field -> the Gunicorn setting that fills it; `None` when gunicorn-asgi is not installed.

    The hook this generator prefers: `gunicorn_asgi.describe_settings()`, returning one dict per Config field
    it fills, with the keys of `GunicornSource` plus `config` (the field). Until the worker publishes that, what
    it already has is read: its public `SETTINGS` (the settings it adds, each filling the Config field of the
    same name) and the table its config mapping names Gunicorn settings with in error messages
    (`gunicorn_asgi._config_map._SOURCES`). Import errors other than "not installed" are raised.
    """
    try:
        worker = importlib.import_module("gunicorn_asgi")
    except ModuleNotFoundError as exc:
        if exc.name != "gunicorn_asgi":
            raise
        return None
    describe = getattr(worker, "describe_settings", None)
    if describe is not None:
        return {
            item["config"]: GunicornSource(**{k: v for k, v in item.items() if k != "config"})
            for item in describe()
        }
    defaults = _gunicorn_defaults()
    sources: dict[str, GunicornSource] = {}
    config_map = importlib.import_module("gunicorn_asgi._config_map")
    fields = {setting["name"] for setting in describe_settings()}
    for field_name, (setting, flag) in getattr(config_map, "_SOURCES", {}).items():
        if field_name not in fields:  # the table also names what the worker reads outside Config (`loop`)
            continue
        sources[field_name] = GunicornSource(setting, flag, added=False, default=defaults.get(setting, _UNKNOWN))
    for spec in getattr(worker, "SETTINGS", ()):
        default = defaults.get(spec.name, spec.default)
        sources[spec.name] = GunicornSource(
            spec.name, spec.flag, added=spec.name not in defaults, default=default, note=spec.help_suffix
        )
    return sources


def _gunicorn_defaults() -> dict[str, object]:
    """Gunicorn's own settings and their defaults (before gunicorn-asgi registers its additions)."""
    from gunicorn.config import KNOWN_SETTINGS  # noqa: PLC0415 - only needed when the worker is installed

    # Once gunicorn-asgi has registered its settings in this process (a test may have), they are in the list too:
    # they are told apart by their section.
    return {setting.name: setting.default for setting in KNOWN_SETTINGS if setting.section != "gunicorn-asgi"}


def _render_setting(setting: dict[str, Any], sources: dict[str, GunicornSource] | None) -> list[str]:
    name = setting["name"]
    facts = [
        f"**Type** `{setting['type']}`",
        f"**Default** {_with_unit(setting['default'], setting['help'])}",
        f"**Accepted** {_accepted(setting)}",
    ]
    lines = [f"### `{name}` {{#{_anchor(name)}}}", "", " · ".join(facts), "", setting["help"], ""]
    if sources is None:
        return lines
    source = sources.get(name)
    if source is None:
        lines += ["**Under Gunicorn:** not a Gunicorn setting; the default above applies.", ""]
        return lines
    text = f"**Under Gunicorn:** `{source.flag}`, or `{source.setting}` in `gunicorn.conf.py`"
    if source.default is not _UNKNOWN:
        default = source.default
        shown = ",".join(default) if isinstance(default, (list, tuple)) else str(default)
        label = "default" if source.added else "Gunicorn's default"
        text += f"; {label} `{shown or repr('')}`"
    text += "."
    if source.added:
        text += " Added by gunicorn-asgi: available with the `gunicorn-asgi` command."
    if source.note:
        text += f" {source.note}"
    lines += [text, ""]
    return lines


def render() -> str:
    settings = describe_settings()
    sources = gunicorn_sources()
    lines = [
        "<!-- Generated by docs/gen_settings.py from asgi_core.describe_settings(); do not edit. -->",
        "",
        "# Settings",
        "",
        "Every protocol-level setting is a field of `asgi_core.Config`, one frozen dataclass shared by all the",
        "protocol packages. It validates on construction: a value of the wrong type or out of range raises",
        "`asgi_core.ConfigError`, whose message names the setting, the value and what is accepted.",
        "",
        "```python",
        "from asgi_core import Config",
        "",
        'config = Config(keep_alive_timeout=10.0, max_request_body_size=8 * 1024 * 1024, root_path="/api")',
        "```",
        "",
        "Pass it to `asgi_core.serve(..., config=config)` or to a `ServerContext`. This page is generated from",
        "the code; the list below is complete for the version it was built from.",
        "",
    ]
    if sources is None:
        lines += [
            '!!! note "Gunicorn command-line flags"',
            "    gunicorn-asgi was not installed when this page was built, so it lists the `Config` fields only.",
            "",
        ]
    else:
        lines += [
            "Under Gunicorn, the gunicorn-asgi worker fills each field from a Gunicorn setting, shown as **Under",
            "Gunicorn** below: a command-line flag, or the same name in `gunicorn.conf.py`. Where Gunicorn has",
            "its own default for a setting (`--keep-alive`, for one), that default applies there. A bad value",
            "stops the worker at startup with a message naming the Gunicorn setting. Settings that Gunicorn",
            "itself lacks are added by the `gunicorn-asgi` command; started as",
            "`gunicorn --worker-class egg:gunicorn-asgi#asgi`, the worker uses their defaults.",
            "",
        ]
    lines += ["| setting | default | Gunicorn flag |", "| --- | --- | --- |"]
    for setting in settings:
        name = setting["name"]
        source = (sources or {}).get(name)
        flag = f"`{source.flag}`" if source is not None else "none"
        lines.append(
            f"| [`{name}`](#{_anchor(name)}) | {_with_unit(setting['default'], setting['help'])} | {flag} |"
        )
    lines.append("")
    for _prefix, title, intro in SECTIONS:
        members = [setting for setting in settings if _section_of(setting["name"]) == title]
        if not members:
            continue
        lines += [f"## {title}", "", intro, ""]
        for setting in members:
            lines += _render_setting(setting, sources)
    lines += _render_worker_settings()
    return "\n".join(lines).rstrip("\n") + "\n"


def _render_worker_settings() -> list[str]:
    """The gunicorn-asgi worker's own settings (not `Config` fields): `gunicorn_asgi.describe_ops_settings()`."""
    try:
        worker = importlib.import_module("gunicorn_asgi")
    except ModuleNotFoundError as exc:
        if exc.name != "gunicorn_asgi":
            raise
        return []
    lines = [
        "## Worker operations",
        "",
        "Settings of the gunicorn-asgi worker and its master, not of any protocol: added by the `gunicorn-asgi`",
        "command (a command-line flag, or the same name in `gunicorn.conf.py`).",
        "",
    ]
    for item in worker.describe_ops_settings():
        name = item["name"]
        facts = [f"**Flag** `{item['flag']}`", f"**Default** {format_default(item['default'])}"]
        facts.append(f"**Accepted** {item['accepted']}")
        lines += [f"### `{name}` {{#{_anchor(name)}}}", "", " · ".join(facts), "", item["help"], ""]
    return lines


def write(path: Path = OUTPUT) -> bool:
    """Write the page if its text changed; return whether it did."""
    text = render()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def on_pre_build(config: Any) -> None:  # noqa: ARG001 - the signature mkdocs calls hooks with
    """mkdocs hook: regenerate before every build, so no build can show a stale page."""
    write()


if __name__ == "__main__":
    print(f"{OUTPUT}: {'written' if write() else 'unchanged'}", file=sys.stderr)
