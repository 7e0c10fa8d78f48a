#!/usr/bin/env python3
"""Draw a benchmark result again as the SVG chart beside its Markdown table, and point the Markdown at it.

    python3 bench/chart.py bench/results/2026-11-21-all.json          # writes bench/results/2026-11-21-all.svg
    python3 bench/chart.py --docs bench/results/2026-11-21-all.json   # and copies it to the Performance page

bench/run.py draws the chart itself after every run; this is for results made before charts existed, and for
the docs: `--docs` copies the chart to docs/performance/latest.svg and writes the run's date and command into
docs/performance.md, which tests/test_docs_flags.py holds to the newest result.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from suite import chart, report  # found beside this script, as bench/run.py finds it

ROOT = Path(__file__).resolve().parents[1]
DOCS_CHART = ROOT / "docs" / "performance" / "latest.svg"
DOCS_PAGE = ROOT / "docs" / "performance.md"
RUN_START, RUN_END = "<!-- bench-run:start -->", "<!-- bench-run:end -->"


def docs_block(data: dict[str, object], json_path: Path) -> str:
    relative = json_path.resolve().relative_to(ROOT)
    return (
        f"{RUN_START}\nThe latest run, {data['date']} (`{relative}`), made with\n\n"
        f"```console\n{data['command']}\n```\n\non {data['machine']}. Ours ran as {data['ours_mode']}.\n{RUN_END}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="a result JSON written by bench/run.py")
    parser.add_argument("--docs", action="store_true", help="also update the docs' Performance page")
    options = parser.parse_args()
    json_path: Path = options.result
    data = json.loads(json_path.read_text())
    svg_path = json_path.with_suffix(".svg")
    problem = chart.draw(json_path, svg_path)
    if problem is not None:
        print(f"no chart: {problem}", file=sys.stderr)
        return 1
    json_path.with_suffix(".md").write_text(report.markdown(data, chart=svg_path.name))
    print(f"wrote {svg_path} and {json_path.with_suffix('.md')}")
    if options.docs:
        DOCS_CHART.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(svg_path, DOCS_CHART)
        pattern = re.compile(re.escape(RUN_START) + ".*?" + re.escape(RUN_END), re.DOTALL)
        page = DOCS_PAGE.read_text()
        DOCS_PAGE.write_text(pattern.sub(lambda _: docs_block(data, json_path), page, count=1))
        print(f"updated {DOCS_CHART.relative_to(ROOT)} and {DOCS_PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
