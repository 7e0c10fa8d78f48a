"""The docs and the README stay true to the command: every flag they give `gunicorn-asgi` is in its `--help`,
no page shows a snippet marker instead of its example, and the committed settings reference is the one the
code generates. docs/checks.py holds the checks; the docs build runs them as a hook, these tests run them
without building the site.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_flags_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


checks = load(DOCS / "checks.py")


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_flag_named_in_the_docs_exists(page: Path) -> None:
    flags = checks.flags_in_markdown(page.read_text(encoding="utf-8"))
    assert checks.unknown_flags(flags, set(checks.known_flags())) == [], f"fix {page.relative_to(ROOT)}"


def test_the_flag_check_reads_the_pages_that_name_flags() -> None:
    # Guards the extractor itself: were it to find nothing, every page would pass.
    named = {flag for page in PAGES for flag in checks.flags_in_markdown(page.read_text(encoding="utf-8"))}
    assert {"--bind", "--workers", "--forwarded-allow-ips", "--http-protocols", "--proxy-protocol"} <= named
    assert "--now" not in named  # `systemctl enable --now` is another program's flag
    assert "--cacert" not in named  # so is curl's


def test_flags_are_found_in_commands_and_inline_code_only() -> None:
    page = """\
Run `gunicorn-asgi app:app --made-up-one 3` or set `--made-up-two`; `curl --http2 x` is curl's.

```console
$ gunicorn-asgi app:app --workers 2 \\
    --made-up-three   # not --in-a-comment
$ curl --cacert c.pem https://x/
```

```ini
ExecStart=/srv/.venv/bin/gunicorn-asgi app:app --made-up-four
```
"""
    flags = checks.flags_in_markdown(page)
    assert flags == ["--made-up-one", "--made-up-two", "--workers", "--made-up-three", "--made-up-four"]
    known = set(checks.known_flags())
    assert checks.unknown_flags(flags, known) == [flag for flag in flags if flag.startswith("--made-up-")]
    assert checks.unknown_flags(["--http2-max-*", "--nothing-*"], known) == ["--nothing-*"]


@pytest.mark.parametrize(
    "rendered",
    [
        '<p>--8&lt;-- "examples/standalone.py"</p>',  # a marker snippets did not expand
        '<p>--8 &lt; --"examples/standalone.py"</p>',  # the malformed one the standalone page once showed
        '<code>-8&lt;- "x.py"</code>',
        # inside a highlighted code block: one span per token
        '<span class="o">--</span><span class="mi">8</span> <span class="o">&lt;</span> <span class="o">--</span>',
    ],
)
def test_a_snippet_marker_left_in_a_page_is_found(rendered: str) -> None:
    assert checks.snippet_markers(rendered)


def test_no_page_source_holds_a_malformed_snippet_marker() -> None:
    well_formed = re.compile(r'^--8<-- "[^"]+"$')
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            if checks.snippet_markers(line):
                assert well_formed.match(line.strip()), f"{page.relative_to(ROOT)}: {line!r}"
                target = line.strip().split('"')[1].split(":")[0]
                assert (ROOT / target).is_file(), f"{page.relative_to(ROOT)} includes a missing file {target}"


def test_the_committed_settings_reference_is_the_generated_one() -> None:
    # The page is committed so that links to it work when reading the sources; the generator is the truth.
    generator = load(DOCS / "gen_settings.py")
    committed = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "docs/reference/settings.md is stale: run `python3 dev.py docs`"


def test_the_performance_page_shows_the_newest_benchmark_chart() -> None:
    # `python3 bench/chart.py --docs RESULT.json` keeps the page, its chart and the newest result together.
    import json
    import xml.etree.ElementTree as ET

    results = [
        json.loads(path.read_text()) | {"path": path} for path in (ROOT / "bench" / "results").glob("*.json")
    ]
    newest = max((r for r in results if not r["settings"].get("smoke")), key=lambda r: r["started"])
    fix = f"run `python3 bench/chart.py --docs {newest['path'].relative_to(ROOT)}`"
    chart = newest["path"].with_suffix(".svg")
    assert chart.is_file(), fix
    shown = DOCS / "performance" / "latest.svg"
    assert shown.read_bytes() == chart.read_bytes(), fix
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    assert "](performance/latest.svg)" in page
    assert f"`{newest['path'].relative_to(ROOT)}`" in page, fix
    assert f"\n{newest['command']}\n" in page, fix  # the command that made it, in a console block
    # A real chart of that run: an SVG whose text names every scenario and every server that ran.
    texts = {node.text for node in ET.parse(shown).iter() if node.text}
    for name, scenario in newest["scenarios"].items():
        assert f"{name}: {scenario['title']}" in texts
    assert "ours" in texts
    assert f"![Requests per server CPU-second, each scenario ({newest['date']})]({chart.name})" in (
        newest["path"].with_suffix(".md").read_text(encoding="utf-8")
    )
