"""The benchmark suite in smoke mode against ours and the limit server, so that it cannot rot unnoticed.

No figure is judged here (timings on a shared machine prove nothing); what must hold is that every scenario
runs end to end through the real tools (wrk, h2load, nginx, the WebSocket and memory clients) and measures
something for both servers. Peers are left out: installing their virtualenvs takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "bench" / "run.py"
SCENARIOS = ["plaintext", "json", "post", "close", "stream", "1mib", "ws", "h2", "h2-1", "h2-100", "uwsgi"]
# Command -> the Debian package that provides it.
TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client", "nginx": "nginx", "openssl": "openssl", "taskset": "util-linux"}


def _missing_tools() -> list[str]:
    return [
        tool for tool in TOOLS if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None
    ]


def _ensure_tools() -> None:
    missing = _missing_tools()
    if not missing:
        return
    packages = sorted({TOOLS[tool] for tool in missing})
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"the benchmark needs {', '.join(missing)}: run `apt-get install -y {' '.join(packages)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, timeout=600, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
    )
    assert not _missing_tools(), f"still missing after apt-get: {_missing_tools()}"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    _ensure_tools()
    results = tmp_path_factory.mktemp("bench-results")
    command = [sys.executable, str(RUN), "--smoke", "--here", "--servers", "limit,ours"]
    command += ["--results-dir", str(results)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=420, check=False)
    assert done.returncode == 0, f"bench/run.py failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    reports = sorted(results.glob("*-smoke-all.json"))
    assert len(reports) == 1, f"expected one JSON report, found {[p.name for p in results.iterdir()]}"
    data: dict[str, Any] = json.loads(reports[0].read_text())
    return data, reports[0].with_suffix(".md")


@pytest.mark.timeout(480)
@pytest.mark.parametrize("server", ["limit", "ours"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_bench_smoke_scenario_measures(smoke_run: tuple[dict[str, Any], Path], scenario: str, server: str) -> None:
    data, _ = smoke_run
    result = data["scenarios"][scenario]["results"][server]
    assert result["status"] == "ok", f"{server} in {scenario}: {result.get('reason')}"
    [measured] = result["rounds"]
    assert measured["requests"] > 0, measured
    assert result["median_rps"] > 0
    assert result["median_per_cpu"] > 0, "server CPU time was not read from /proc"
    assert measured["client_cpu_seconds"] > 0, "the load tool's CPU time was not read from its rusage"
    assert measured["p99_ms"] is not None
    assert measured["p99_ms"] > 0
    assert measured["rss_bytes"] > 1024 * 1024
    assert measured["errors"] < measured["requests"], measured["detail"]


@pytest.mark.timeout(480)
@pytest.mark.parametrize("server", ["limit", "ours"])
def test_bench_smoke_memory_measures(smoke_run: tuple[dict[str, Any], Path], server: str) -> None:
    data, _ = smoke_run
    assert data["memory"]["settings"] == {"connections": 1000, "idle": 100, "warm": 100}
    result = data["memory"]["results"][server]
    assert result["status"] == "ok", result.get("reason")
    figures = result["memory"]
    assert figures["churned"] == 1000
    assert figures["held"] == 100
    assert figures["idle_still_open"] == 100, "idle keep-alive connections were closed before being measured"
    assert min(figures["start"], figures["after_churn"], figures["with_idle"], figures["idle_closed"]) > 0


@pytest.mark.timeout(480)
def test_bench_smoke_report_names_everything(smoke_run: tuple[dict[str, Any], Path]) -> None:
    data, markdown = smoke_run
    text = markdown.read_text()
    for scenario in SCENARIOS:
        assert f"## {scenario}: " in text
    assert "### Memory" in text
    for tool in ("wrk", "h2load", "nginx", "OpenSSL"):
        assert tool in text, f"{tool} version missing from the report"
    assert data["machine"].startswith("nproc ")
    assert data["servers"]["ours"]["versions"]["asgi-core"]
    # The ratio table needs a peer; with the limit alone, shares of it are what the report gives.
    assert data["scenarios"]["plaintext"]["results"]["limit"]["share_per_cpu"] == 1.0


def _young_collections_per_request(table: str, threshold: str) -> float:
    """From bench/gc_young.py's table: the worker's young-generation collections per request served."""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == threshold:
            counted, _, requests = cells[-1].partition(" in ")
            return int(counted.split(" / ")[0].replace(",", "")) / int(requests.split()[0].replace(",", ""))
    raise AssertionError(f"no row for threshold {threshold} in:\n{table}")


@pytest.mark.timeout(180)
def test_gc_young_hook_raises_the_threshold_in_our_worker() -> None:
    """bench/gc_young.py runs, and the `post_worker_init` hook docs/how-to/http2.md advises takes effect in our
    worker: with many HTTP/2 streams in flight, a higher young-generation threshold collects far less often."""
    _ensure_tools()
    command = [sys.executable, str(ROOT / "bench" / "gc_young.py"), "--thresholds", "default,10000"]
    command += ["--streams", "100", "--rounds", "1", "--duration", "1", "--warmup", "0", "--no-pin"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, f"bench/gc_young.py failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    default = _young_collections_per_request(done.stdout, "default")
    raised = _young_collections_per_request(done.stdout, "10000")
    assert default > 0
    assert raised < default / 3, done.stdout
