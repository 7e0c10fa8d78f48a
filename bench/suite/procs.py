"""Server processes: start pinned to a core, wait until they answer, read CPU and RSS from /proc, stop.

CPU time is the sum of utime and stime over the server's process tree (a Gunicorn master and its worker,
granian's supervisor and worker), read before and after each measured run: what the server spent, whatever
else the shared machine was doing meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after its last ')'.
    return text.rpartition(")")[2].split()


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def cpu_seconds(root: int) -> float:
    """User plus system CPU seconds of the process tree under `root`."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat(5)
    return ticks / CLOCK_TICKS


def rss_bytes(root: int) -> int:
    """Resident memory of the process tree under `root`."""
    total = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return total


def pinned(cpu: int | None, command: list[str]) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def can_connect(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """One server under test. It runs in its own session so that stopping it reaches its whole tree."""

    name: str
    command: list[str]
    port: int
    cwd: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait_listening(self, timeout: float) -> str | None:
        """None once the port accepts connections; else why not (the process died, or the time ran out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                return f"exited with status {code}: {self.log_tail()}"
            if can_connect(self.port):
                return None
            time.sleep(0.05)
        return f"not listening after {timeout:.0f}s: {self.log_tail()}"

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the server's process group, then SIGKILL to whatever of it is left after `grace`."""
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid  # start_new_session made the server the leader of its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)


def wait_port(port: int, process: ServerProcess, timeout: float) -> str | None:
    """None once `port` accepts connections while `process` runs; else why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.exited() is not None:
            return f"exited with status {process.exited()}: {process.log_tail()}"
        if can_connect(port):
            return None
        time.sleep(0.05)
    return f"port {port} not listening after {timeout:.0f}s: {process.log_tail()}"
