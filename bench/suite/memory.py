"""The memory scenario: RSS before and after connection churn, and with idle keep-alive connections held.

A server that keeps something per connection after the connection is gone grows with the churn; what an idle
connection costs shows while the held ones are open. Servers run one at a time here: nothing else is loaded
while one is measured.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from .procs import ServerProcess, pinned, rss_bytes
from .servers import BENCH


@dataclass(frozen=True)
class MemorySettings:
    connections: int
    idle: int
    warm: int


def _client(python: str, cpu: int | None, port: int, mode: str, count: int, seconds: float) -> list[str]:
    command = [python, str(BENCH / "clients" / "conn_churn.py"), mode, "--port", str(port)]
    return pinned(cpu, [*command, "--connections", str(count), "--seconds", str(seconds)])


def _churn(python: str, cpu: int | None, port: int, count: int) -> dict[str, Any]:
    bound = 60 + count / 200  # far above any server's pace here; only a hang reaches it
    done = subprocess.run(
        _client(python, cpu, port, "churn", count, bound),
        capture_output=True,
        text=True,
        timeout=bound + 30,
        check=False,
    )
    try:
        summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"churn client failed: {done.stderr.strip()[-300:]}") from None
    if summary["errors"]:
        raise RuntimeError(f"{summary['errors']} connection(s) failed, first: {summary['first_error']}")
    return summary


def measure(server: ServerProcess, python: str, cpu: int | None, settings: MemorySettings) -> dict[str, Any]:
    _churn(python, cpu, server.port, settings.warm)  # imports and caches done before the first reading
    time.sleep(0.5)
    start = rss_bytes(server.pid)
    churn = _churn(python, cpu, server.port, settings.connections)
    time.sleep(1.0)
    after_churn = rss_bytes(server.pid)
    holder = subprocess.Popen(
        _client(python, cpu, server.port, "hold", settings.idle, 120),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stdin = holder.stdout, holder.stdin
    if stdout is None or stdin is None:
        raise RuntimeError("the idle-connection client has no pipes")
    try:
        ready, _, _ = select.select([stdout], [], [], 60)
        line = stdout.readline() if ready else ""
        if not line.startswith("held "):
            holder.kill()
            _, err = holder.communicate(timeout=10)
            raise RuntimeError(f"could not hold idle connections: {line.strip()} {err.strip()[-300:]}")
        time.sleep(0.5)
        with_idle = rss_bytes(server.pid)
        stdin.write("\n")
        stdin.flush()
        out, err = holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
    hold = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"errors": err.strip()[-300:]}
    time.sleep(1.0)
    idle_closed = rss_bytes(server.pid)
    held = int(line.split()[1])
    return {
        "churned": churn["connections"],
        "churn_seconds": churn["seconds"],
        "start": start,
        "after_churn": after_churn,
        "growth_per_connection": (after_churn - start) / max(churn["connections"], 1),
        "held": held,
        "with_idle": with_idle,
        "per_idle_connection": (with_idle - after_churn) / max(held, 1),
        "idle_closed": idle_closed,
        "idle_still_open": hold.get("still_open"),
        "idle_errors": hold.get("errors"),
    }
