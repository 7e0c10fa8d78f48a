"""Draw a benchmark result as an SVG chart: `python plot_chart.py RESULT.json OUT.svg` (needs matplotlib).

Run by bench/suite/chart.py in a Python that has matplotlib (the bench's tools venv); it reads only the
result JSON, so any run can be drawn again later. One panel per scenario: requests per server CPU-second
(the median over rounds) for each server that ran it, ours highlighted; the limit server, whose canned
replies would dwarf every bar, is named in the panel's title instead of drawn.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import matplotlib as mpl

mpl.use("svg")
mpl.rcParams["svg.fonttype"] = "none"  # text stays text: a small, searchable file
mpl.rcParams["svg.hashsalt"] = "bench"  # fixed ids, and no date below: the same result draws the same bytes
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen before pyplot is imported

OURS_COLOUR = "#d9480f"
PEER_COLOUR = "#868e96"
COLUMNS = 3


def draw(data: dict[str, Any], out: str) -> None:
    scenarios: dict[str, Any] = data["scenarios"]
    servers = [name for name in data["servers_order"] if name != "limit"]
    rows = math.ceil(len(scenarios) / COLUMNS)
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(4.2 * COLUMNS, 0.32 * len(servers) * rows + 1.6 * rows))
    flat = list(axes.flat) if hasattr(axes, "flat") else [axes]
    for ax, (name, scenario) in zip(flat, scenarios.items(), strict=False):
        results = scenario["results"]
        shown = [s for s in servers if results.get(s, {}).get("median_per_cpu")]
        values = [results[s]["median_per_cpu"] for s in shown]
        colours = [OURS_COLOUR if s == "ours" else PEER_COLOUR for s in shown]
        ax.barh(range(len(shown)), values, color=colours)
        ax.set_yticks(range(len(shown)), shown, fontsize=8)
        ax.invert_yaxis()
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.0f}", va="center", fontsize=7)
        ax.set_xlim(0, max(values, default=1) * 1.3)
        ax.tick_params(axis="x", labelsize=7)
        limit = results.get("limit", {}).get("median_per_cpu")
        title = f"{name}: {scenario['title']}"
        ax.set_title(title + (f"\nlimit: {limit:,.0f}" if limit else ""), fontsize=8, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in flat[len(scenarios) :]:
        ax.set_visible(False)
    figure.suptitle(
        f"Requests per server CPU-second, median of rounds (higher is better): {data['date']}, {data['scenario_set']}",
        fontsize=10,
        x=0.01,
        ha="left",
    )
    figure.text(0.01, 0.002, f"{data['command']}  |  {data['machine']}", fontsize=6, color="#495057")
    figure.tight_layout(rect=(0, 0.02, 1, 0.97))
    figure.savefig(out, format="svg", metadata={"Date": None})


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        draw(json.load(file), sys.argv[2])
