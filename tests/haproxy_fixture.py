"""Debian's HAProxy in front of a server under test: a generated config in a temporary directory, a loopback
port, a foreground process stopped by its PID.

    from tests.haproxy_fixture import HAProxyFactory, haproxy_fixture  # noqa: F401  (the `haproxy` fixture)

    def test_something(haproxy: HAProxyFactory) -> None:
        front = haproxy(mode="http", server="127.0.0.1:9000", frontend="option forwardfor")
        assert httpx.get(front.url("/")).status_code == 200

`haproxy(mode=..., server=..., server_options=..., frontend=..., backend=...)` starts one HAProxy with one
frontend on a free loopback port and one backend server; every HAProxy a test started is stopped when the
test ends. If HAProxy is missing it is installed with `apt-get install -y haproxy` when running as root (as CI
does on fresh Debian machines); otherwise the test fails and says how to install it. `install_debian_package`
does the same for other programs (Chromium for tests/test_browser_chromium.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
#: Per package, what its automatic install said (None: it worked); one attempt per test session.
_install_errors: dict[str, str | None] = {}

# `-db` keeps HAProxy in the foreground; a master-worker-less single process is stopped by one SIGTERM.
# Timeouts are the balancer's side of the keep-alive race that docs/how-to/load-balancers.md explains.
_CONFIG = """\
global
    log stdout format raw local0 info
    maxconn 256
    pidfile {dir}/haproxy.pid

defaults
    log global
    mode {mode}
    option {log_option}
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    timeout tunnel 60s

frontend front
    bind 127.0.0.1:{port}
{frontend}
    default_backend servers

backend servers
{backend}
    server app {server} {server_options}
"""


def haproxy_binary() -> str:
    """The haproxy executable, installed from Debian's package first when missing and we are root."""
    found = shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(path, os.X_OK)), None
    )
    return found or install_debian_package("haproxy")


def install_debian_package(package: str) -> str:
    """Install a Debian package whose program has its name (`apt-get install`, once per test session, when
    root, as CI is) and return the program's path; fail the test with how to install it otherwise."""
    if package not in _install_errors and hasattr(os, "geteuid") and os.geteuid() == 0:
        _install_errors[package] = _apt_install(package)
    found = shutil.which(package) or next(
        (path for path in (f"/usr/sbin/{package}", f"/usr/bin/{package}") if os.access(path, os.X_OK)), None
    )
    if found is not None:
        return found
    error = _install_errors.get(package)
    pytest.fail(
        f"{package} is needed by this test and is not installed. Install Debian's package with "
        f"`sudo apt-get install -y {package}` (CI runs the tests as root, and then the test installs it itself)"
        + (f"; the automatic install failed: {error}" if error else ""),
        pytrace=False,
    )


def _apt_install(package: str) -> str | None:
    """`apt-get update` and `apt-get install` one package: None, or what went wrong."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
    # Debian's postinst starts a packaged service (haproxy's); a policy-rc.d that says no keeps the install
    # from leaving a daemon behind (docker images ship the same file for the same reason).
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        for command in ([*apt, "update"], [*apt, "install", "-y", "--no-install-recommends", package]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
            if result.returncode != 0:
                return f"`{' '.join(command)}` exited {result.returncode}: {result.stderr[-2000:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class HAProxy:
    """One running HAProxy."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    config: str
    stopped: bool = field(default=False)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        path = self.directory / "output.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: HAProxy's hard stop, enough for a test
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


def start_haproxy(
    directory: Path,
    *,
    mode: str,
    server: str,
    server_options: str = "",
    frontend: str = "",
    backend: str = "",
    attempts: int = 3,
) -> HAProxy:
    """Start HAProxy in the foreground; return once its frontend accepts connections."""
    binary = haproxy_binary()
    directory.mkdir(parents=True, exist_ok=True)
    last_error = ""
    config = ""
    for _ in range(attempts):
        port = free_port()
        config = _CONFIG.format(
            dir=directory,
            mode=mode,
            log_option="httplog" if mode == "http" else "tcplog",
            port=port,
            frontend=_indent(frontend),
            backend=_indent(backend),
            server=server,
            server_options=server_options,
        )
        config_path = directory / "haproxy.cfg"
        config_path.write_text(config)
        checked = subprocess.run(
            [binary, "-c", "-q", "-f", str(config_path)], capture_output=True, text=True, timeout=30, check=False
        )
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy refused its config:\n{checked.stdout}{checked.stderr}\n{config}")
        with (directory / "output.log").open("wb") as output:
            process = subprocess.Popen(
                [binary, "-db", "-f", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        front = HAProxy(process, port, directory, config)
        if _wait_until_listening(front):
            return front
        front.stop()
        last_error = front.output()
        if "Address already in use" not in last_error and "cannot bind" not in last_error:
            break  # a port race is worth another try; nothing else is
    raise RuntimeError(f"haproxy did not start:\n{last_error}\nconfig:\n{config}")


def _indent(lines: str) -> str:
    return "\n".join(f"    {line.strip()}" for line in lines.strip().splitlines())


def _wait_until_listening(front: HAProxy) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if front.process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", front.port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class HAProxyFactory(Protocol):
    def __call__(
        self, *, mode: str, server: str, server_options: str = "", frontend: str = "", backend: str = ""
    ) -> HAProxy: ...


@pytest.fixture(name="haproxy")
def haproxy_fixture(tmp_path: Path) -> Iterator[HAProxyFactory]:
    """Start HAProxy instances for one test; all of them are stopped (by PID) when the test ends."""
    started: list[HAProxy] = []

    def factory(
        *, mode: str, server: str, server_options: str = "", frontend: str = "", backend: str = ""
    ) -> HAProxy:
        front = start_haproxy(
            tmp_path / f"haproxy-{len(started)}",
            mode=mode,
            server=server,
            server_options=server_options,
            frontend=frontend,
            backend=backend,
        )
        started.append(front)
        return front

    try:
        yield factory
    finally:
        for front in started:
            front.stop()
