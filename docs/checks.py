"""Checks that fail the docs build when a page says something untrue about the code (an mkdocs hook).

- A snippet marker left in a rendered page: `pymdownx.snippets` with `check_paths` fails on a missing file,
  but a marker it does not recognise (`--8 < --"file"`, as a formatter once rewrote one) is passed through as
  text and the page shows it instead of the example. Any marker-like text in the HTML fails the build.
- A command-line flag that `gunicorn-asgi --help` does not list, in a `gunicorn-asgi` or `gunicorn` command
  (in a code block, or in an inline code span that starts with the command or with the flag itself).
  Commands of other programs (`curl --http2`, `systemctl enable --now`) are not ours and are skipped.

tests/test_docs_flags.py runs the same functions over every page and the README, so CI catches both without
building the site.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

# `--8<--`, and the forms a formatter or a hurried edit leaves: `--8 < --`, `-8<-`, HTML-escaped `&lt;`.
_SNIPPET_MARKER = re.compile(r"-+\s*8\s*<\s*-+")
# A flag: `--name`, with Gunicorn's odd underscores (`--limit-request-field_size`); a trailing `*` is a family.
_TAG = re.compile(r"<[^>]*>")
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9](?:-\*)?")
_COMMAND = re.compile(r"(?:^|[\s/=])(?:gunicorn-asgi|gunicorn)(?=\s|$)")
_FENCE = re.compile(r"^(\s*)(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


class DocsCheckError(Exception):
    """A page that would mislead a reader: the message names the page and what is wrong."""


def snippet_markers(text: str) -> list[str]:
    """Snippet markers left in rendered text: tags are dropped and entities unescaped first, since a code
    block's highlighter splits a marker into one span per token."""
    return _SNIPPET_MARKER.findall(html.unescape(_TAG.sub("", text)))


def _logical_lines(lines: Iterable[str]) -> Iterable[str]:
    """Shell lines with backslash continuations joined."""
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _command_flags(line: str) -> list[str]:
    """Flags given to `gunicorn-asgi` / `gunicorn` in one shell line (none if the line runs another program)."""
    line = line.split(" #", 1)[0]  # a trailing comment may mention anything
    match = _COMMAND.search(line)
    return _FLAG.findall(line[match.end() :]) if match else []


def flags_in_markdown(text: str) -> list[str]:
    """Every flag the page gives to our command, in code blocks and inline code, in order of appearance."""
    found: list[str] = []
    in_block = False
    block: list[str] = []
    for line in text.splitlines():
        if _FENCE.match(line):
            if in_block:
                for logical in _logical_lines(block):
                    found += _command_flags(logical.removeprefix("$ ").strip())
                block = []
            in_block = not in_block
            continue
        if in_block:
            block.append(line)
            continue
        for _, raw_span in _CODE_SPAN.findall(line):
            span = raw_span.strip()
            if span.startswith("--"):
                found += _FLAG.findall(span)
            else:
                found += _command_flags(span)
    return found


def unknown_flags(flags: Iterable[str], known: set[str]) -> list[str]:
    """The flags not in `known`; `--family-*` is known when some known flag starts with `--family-`."""
    missing = []
    for flag in flags:
        if flag.endswith("*"):
            if not any(name.startswith(flag[:-1]) for name in known):
                missing.append(flag)
        elif flag not in known:
            missing.append(flag)
    return missing


@cache
def known_flags() -> frozenset[str]:
    """The flags `gunicorn-asgi --help` lists (the command installed beside this Python, or on PATH)."""
    beside = Path(sys.executable).parent / ("gunicorn-asgi.exe" if os.name == "nt" else "gunicorn-asgi")
    program = str(beside) if beside.exists() else shutil.which("gunicorn-asgi")
    if program is None:
        raise DocsCheckError("gunicorn-asgi is not installed: the docs' command-line flags cannot be checked")
    help_text = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    return frozenset(_FLAG.findall(help_text))


def check_page(name: str, markdown: str) -> None:
    """Raise DocsCheckError if `markdown` names a flag `gunicorn-asgi --help` does not list."""
    missing = unknown_flags(flags_in_markdown(markdown), set(known_flags()))
    if missing:
        raise DocsCheckError(f"{name} names flags that `gunicorn-asgi --help` does not list: {', '.join(missing)}")


# ---- mkdocs hook entry points (mkdocs.yml `hooks:`) -------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    from mkdocs.exceptions import PluginError  # noqa: PLC0415 - only the docs build has mkdocs; tests import us

    try:
        check_page(page.file.src_uri, markdown)
    except DocsCheckError as exc:
        raise PluginError(str(exc)) from None
    return markdown


def on_page_content(content: str, page: Any, **_: Any) -> str:
    from mkdocs.exceptions import PluginError  # noqa: PLC0415 - as above

    markers = snippet_markers(content)
    if markers:
        raise PluginError(
            f"{page.file.src_uri} shows a snippet marker instead of the file it names ({markers[0]!r}): write it "
            'exactly as --8<-- "path/from/the/repository/root"'
        )
    return content
