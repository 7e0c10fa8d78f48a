"""Figures from the raw rounds (medians, shares of the limit, ours against each peer) and the written report."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from . import chart as charts

MiB = 1024 * 1024
README_START = "<!-- latest-result:start -->"
README_END = "<!-- latest-result:end -->"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(scenario: dict[str, Any]) -> None:
    """Add medians, shares of the limit and ours/peer ratios to one scenario's results, in place."""
    results: dict[str, dict[str, Any]] = scenario["results"]
    for result in results.values():
        rounds = result.get("rounds", [])
        result["median_rps"] = _median([r["rps"] for r in rounds])
        result["median_per_cpu"] = _median([r["per_cpu"] for r in rounds if r["per_cpu"] is not None])
        result["median_p99_ms"] = _median([r["p99_ms"] for r in rounds if r["p99_ms"] is not None])
        result["median_us_per_request"] = _median_pair([_us_per_request(r) for r in rounds if r["requests"]])
        result["errors"] = sum(r["errors"] for r in rounds)
        if result["status"] == "ok" and not result["median_rps"]:
            result["status"] = "failed"
            result.setdefault("reason", "no successful request")
    limit = results.get("limit", {})
    for result in results.values():
        for key, share in (("median_rps", "share_rps"), ("median_per_cpu", "share_per_cpu")):
            ceiling = limit.get(key)
            result[share] = result[key] / ceiling if ceiling and result.get(key) is not None else None
    ours = results.get("ours", {})
    ratios = {}
    for name, result in results.items():
        if name in {"ours", "limit"}:
            continue
        ratio = {}
        for key in ("median_rps", "median_per_cpu"):
            mine, theirs = ours.get(key), result.get(key)
            ratio[key.removeprefix("median_")] = mine / theirs if mine and theirs else None
        ratios[name] = ratio
    scenario["ratios"] = ratios


def _us_per_request(measured_round: dict[str, Any]) -> tuple[float, float | None]:
    """CPU microseconds per request of the server and, when recorded, of the load tool."""
    requests = measured_round["requests"]
    client = measured_round.get("client_cpu_seconds")
    return 1e6 * measured_round["cpu_seconds"] / requests, None if client is None else 1e6 * client / requests


def _median_pair(pairs: list[tuple[float, float | None]]) -> tuple[float, float | None] | None:
    if not pairs:
        return None
    clients = [client for _, client in pairs if client is not None]
    return statistics.median(server for server, _ in pairs), statistics.median(clients) if clients else None


def _cpu_split(result: dict[str, Any]) -> str:
    pair = result.get("median_us_per_request")
    if pair is None:
        return "n/a"
    server, client = pair
    return f"{server:,.1f} / {_num(client, 1)}"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _cell(result: dict[str, Any] | None) -> str:
    if result is None or result.get("median_per_cpu") is None:
        return "n/a"
    share = result.get("share_per_cpu")
    return (
        f"{_num(result['median_per_cpu'])} ({share:.2f})" if share is not None else _num(result["median_per_cpu"])
    )


def _rss(rounds: list[dict[str, Any]]) -> str:
    return " / ".join(f"{r['rss_bytes'] / MiB:.1f}" for r in rounds) or "n/a"


def summary_tables(data: dict[str, Any]) -> list[str]:
    servers: list[str] = data["servers_order"]
    lines = [
        "### Requests per server CPU-second (share of the limit)",
        "",
        "| scenario | " + " | ".join(servers) + " |",
        "| --- |" + " ---: |" * len(servers),
    ]
    for name, scenario in data["scenarios"].items():
        cells = [_cell(scenario["results"].get(server)) for server in servers]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    peers = [s for s in servers if s not in {"ours", "limit"}]
    if "ours" in servers and peers:
        lines += [
            "",
            "### Ours against each peer, requests per CPU-second (requests/s in brackets), same run",
            "",
            "| scenario | " + " | ".join(f"vs {p}" for p in peers) + " |",
            "| --- |" + " ---: |" * len(peers),
        ]
        for name, scenario in data["scenarios"].items():
            ratios = scenario.get("ratios", {})
            cells = []
            for peer in peers:
                ratio = ratios.get(peer, {})
                per_cpu, rps = ratio.get("per_cpu"), ratio.get("rps")
                cells.append("n/a" if per_cpu is None else f"{_ratio(per_cpu)} ({_ratio(rps)})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if data.get("memory"):
        lines += ["", *memory_table(data)]
    return lines


def memory_table(data: dict[str, Any]) -> list[str]:
    memory = data["memory"]
    churned, idle = memory["settings"]["connections"], memory["settings"]["idle"]
    lines = [
        f"### Memory: RSS (MiB) before and after {churned:,} connections, then with {idle:,} idle keep-alive "
        "connections held",
        "",
        f"| server | start | after {churned:,} | growth per connection (bytes) | with {idle:,} idle | "
        "per idle connection (KiB) | idle closed | idle still open when measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for server in data["servers_order"]:
        result = memory["results"].get(server)
        if result is None:
            continue
        if result["status"] != "ok":
            lines.append(f"| {server} | n/a: {result.get('reason', '')[:120]} |||||||")
            continue
        m = result["memory"]
        lines.append(
            f"| {server} | {m['start'] / MiB:.1f} | {m['after_churn'] / MiB:.1f} | "
            f"{_num(m['growth_per_connection'])} | {m['with_idle'] / MiB:.1f} | "
            f"{m['per_idle_connection'] / 1024:.1f} | {m['idle_closed'] / MiB:.1f} | {m['idle_still_open']} |"
        )
    return lines


def scenario_section(name: str, scenario: dict[str, Any], servers: list[str]) -> list[str]:
    lines = [
        f"## {name}: {scenario['title']}",
        "",
        f"Load: {scenario['load']}.",
        "",
        "| server | req/s (median) | share of limit | req per CPU-s (median) | share of limit | "
        "CPU us/req, server / load tool | p99 ms | RSS MiB by round | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    missing = []
    for server in servers:
        result = scenario["results"].get(server)
        if result is None:
            continue
        if result["status"] != "ok":
            missing.append(f"- {server}: {result['status']} ({result.get('reason', '')})")
            continue
        share_rps = result.get("share_rps")
        share_cpu = result.get("share_per_cpu")
        lines.append(
            f"| {server} | {_num(result['median_rps'])} | {_num(share_rps, 2)} | "
            f"{_num(result['median_per_cpu'])} | {_num(share_cpu, 2)} | {_cpu_split(result)} | "
            f"{_num(result['median_p99_ms'], 2)} | "
            f"{_rss(result['rounds'])} | {result['errors']} |"
        )
    if missing:
        lines += ["", "Not measured:", *missing]
    return lines


def markdown(data: dict[str, Any], chart: str | None = None) -> str:
    """The written report; `chart` names the SVG drawn beside it (bench/suite/chart.py), shown under Summary."""
    settings = data["settings"]
    lines = [
        f"# Benchmark {data['date']}: {data['scenario_set']}",
        "",
        f"- Command: `{data['command']}`",
        f"- Machine: {data['machine']}",
        f"- Runs: {settings['rounds']} round(s) of {settings['duration']} s per server and scenario after "
        f"{settings['warmup']} s of warm-up, servers interleaved round by round; each server has one worker "
        f"on CPU {settings['server_cpu']}, the load generators run on CPU {settings['client_cpu']}.",
        f"- Ours ran as: {data['ours_mode']}",
        "- Tools: " + "; ".join(data["tools"].values()),
        "",
        "| server | what | versions | install notes |",
        "| --- | --- | --- | --- |",
    ]
    for name in data["servers_order"]:
        info = data["servers"][name]
        versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        lines.append(f"| {name} | {info['title']} | {versions} | {'; '.join(info['notes'])} |")
    lines += ["", "## Summary", ""]
    if chart:
        lines += [f"![Requests per server CPU-second, each scenario ({data['date']})]({chart})", ""]
    lines += summary_tables(data)
    for name, scenario in data["scenarios"].items():
        lines += ["", *scenario_section(name, scenario, data["servers_order"])]
    lines += [
        "",
        "Figures: requests/s is the load tool's count of successful requests over its run; requests per "
        "CPU-second divides them by the user+system CPU time the server's process tree used during the run "
        "(from /proc/<pid>/stat), which a noisy neighbour barely moves. Shares are of the limit server's "
        "median in the same run; ratios compare medians of the same run. CPU us/req gives the server's CPU and the "
        "load tool's (its rusage) per request: on loopback the kernel runs part of the server's TCP sending in the "
        "client's softirq when ACKs release queued data, so where the load tool is saturated (1mib) a server can "
        "look cheaper by making the client work harder; read such scenarios with both columns.",
    ]
    return "\n".join(lines) + "\n"


def write(data: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """The result as JSON, its chart as SVG (when it can be drawn) and the Markdown report showing it."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{data['date']}-{data['scenario_set']}"
    md_path, json_path, svg_path = (directory / f"{stem}.{ext}" for ext in ("md", "json", "svg"))
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    problem = charts.draw(json_path, svg_path)
    if problem is not None:
        print(f"[chart] not drawn, the report has its tables only: {problem}", file=sys.stderr)
    md_path.write_text(markdown(data, chart=None if problem else svg_path.name))
    return md_path, json_path


def _chart_line(result_file: Path, base: Path, data: dict[str, Any]) -> list[str]:
    svg = result_file.with_suffix(".svg")
    if not svg.exists():
        return []
    return [f"![Requests per server CPU-second, each scenario ({data['date']})]({svg.relative_to(base)})", ""]


def update_readme(readme: Path, data: dict[str, Any], result_file: Path) -> bool:
    """Replace the quoted latest result in the README (between the markers) with this run's summary."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    relative = result_file.relative_to(readme.parent)
    block = "\n".join(
        [
            README_START,
            f"Latest full run: [{relative}]({relative}), {data['date']}, `{data['command']}`.",
            f"Machine: {data['machine']}. Ours ran as: {data['ours_mode']}.",
            "",
            *_chart_line(result_file, readme.parent, data),
            *summary_tables(data),
            README_END,
        ]
    )
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    readme.write_text(pattern.sub(lambda _: block, text, count=1))
    return True
