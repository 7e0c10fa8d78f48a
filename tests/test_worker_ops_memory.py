"""--max-worker-memory: a worker whose RSS passes the limit is recycled through the graceful drain, under
steady keep-alive load from a client that never retries (bench/clients/recycle_load.py), losing no request; a
worker under the limit never is. Through a real Gunicorn master."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.worker_fixture import ROOT, ServerFactory, serve_fixture  # noqa: F401

APP = "test_worker_ops_apps:leaky_app"
LOAD = ROOT / "bench" / "clients" / "recycle_load.py"
MIB = 1024 * 1024
RECYCLED = "over --max-worker-memory"


def load(port: int, seconds: float, path: str, connections: int = 4) -> dict[str, Any]:
    command = [sys.executable, str(LOAD), "--port", str(port), "--seconds", str(seconds), "--path", path]
    command += ["--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_a_leaking_worker_is_recycled_without_failing_a_request(serve: ServerFactory) -> None:
    # The limit sits 24 MiB over what a fresh worker holds: the leak (about 3 MiB/s under this load) passes it
    # in seconds, again and again.
    probe = serve(app=APP)
    base = int(httpx.get(probe.url("/rss")).text)
    probe.stop()
    limit = base // MIB + 24
    server = serve("--workers", "2", "--max-worker-memory", str(limit), "--graceful-timeout", "5", app=APP)
    summary = load(server.port, 12, "/leak")
    output = server.output()
    recycles = output.count(RECYCLED)
    assert summary["failed"] == 0, summary
    assert recycles >= 2, f"only {recycles} recycles ({summary}):\n{output}"
    line = next(line for line in output.splitlines() if RECYCLED in line)
    rss = float(line.split("worker RSS ")[1].split(" MiB")[0])
    assert rss > limit, line
    assert f"--max-worker-memory {limit} MiB" in line
    assert summary["requests"] > 1000, summary


def test_a_worker_under_the_limit_is_never_recycled(serve: ServerFactory) -> None:
    server = serve("--max-worker-memory", "4096", app=APP)
    pid = httpx.get(server.url("/pid")).text
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(load(server.port, 6, "/leak")), daemon=True)
    thread.start()
    thread.join(70)
    assert result["failed"] == 0, result
    assert RECYCLED not in server.output()
    assert httpx.get(server.url("/pid")).text == pid  # the same worker, never replaced


def test_a_bad_value_stops_startup_naming_the_setting(serve: ServerFactory, tmp_path: Path) -> None:
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("max_worker_memory = 'lots'\n")
    from_file = serve("--config", str(config), app=APP, wait=False)
    assert from_file.wait_exit() != 0
    assert "invalid value for max_worker_memory (--max-worker-memory): 'lots'" in from_file.output()
    for value in ("-1", "lots", "1.5"):
        server = serve("--max-worker-memory", value, app=APP, wait=False)
        assert server.wait_exit() != 0
        output = server.output()
        assert f"invalid value for max_worker_memory (--max-worker-memory): {value!r}" in output, output
        assert "accepted: a whole number of MiB, 0 or more (0 turns it off)" in output
