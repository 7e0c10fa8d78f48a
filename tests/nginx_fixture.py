"""Debian's nginx in front of a server under test: a generated config in a temporary directory, a loopback
port, a foreground process stopped by its PID.

    from tests.nginx_fixture import NginxFactory, nginx_fixture, proxy_location, uwsgi_location  # noqa: F401

    def test_something(nginx: NginxFactory) -> None:
        front = nginx(uwsgi_location("127.0.0.1:9000"))          # or proxy_location("127.0.0.1:9000")
        assert httpx.get(front.url("/")).status_code == 200

`nginx(server_config, http_config=..., tls=(cert, key))` starts one nginx whose `server` block holds
`server_config` (usually one or more `location` blocks from the helpers below); every nginx a test started is
stopped when it ends. If nginx is missing it is installed with `apt-get install -y nginx` when running as root
(as CI does on fresh Debian machines); otherwise the test fails and says how to install it.
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
_BINARY_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
_UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")
_install_error: str | None = None

_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body_temp;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    client_max_body_size 64m;
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
{http}
    server {{
        listen 127.0.0.1:{port}{ssl};
        server_name localhost;
{tls}
{server}
    }}
}}
"""


def nginx_binary() -> str:
    """The nginx executable, installed from Debian's package first when missing and we are root."""
    found = _find_binary()
    if found is not None:
        return found
    if _install_error is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        _install_nginx()
        found = _find_binary()
        if found is not None:
            return found
    pytest.fail(
        "nginx is needed by this test and is not installed. Install Debian's package with "
        "`sudo apt-get install -y nginx` (CI runs the tests as root, and then the fixture installs it itself)"
        + (f"; the automatic install failed: {_install_error}" if _install_error else ""),
        pytrace=False,
    )


def _find_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in _BINARY_CANDIDATES if os.access(path, os.X_OK)), None)


def _install_nginx() -> None:
    global _install_error  # noqa: PLW0603 - one attempt per test session
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
    # Debian's postinst starts the nginx service; a policy-rc.d that says no keeps the install from leaving a
    # daemon on port 80 behind (docker images ship the same file for the same reason).
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        for command in ([*apt, "update"], [*apt, "install", "-y", "nginx"]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
            if result.returncode != 0:
                _install_error = f"`{' '.join(command)}` exited {result.returncode}: {result.stderr[-2000:]}"
                return
    except (OSError, subprocess.TimeoutExpired) as exc:
        _install_error = f"{type(exc).__name__}: {exc}"
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)


def free_port() -> int:
    """A loopback TCP port free right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Nginx:
    """One running nginx."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    scheme: str = "http"
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> str:
        path = self.directory / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            os.kill(self.pid, 15)  # SIGTERM: fast shutdown of the single (master_process off) process
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, 9)
                self.process.wait(STOP_TIMEOUT)


def start_nginx(
    directory: Path,
    server_config: str,
    *,
    http_config: str = "",
    tls: tuple[Path, Path] | None = None,
    attempts: int = 3,
) -> Nginx:
    """Start nginx in the foreground with `server_config` inside its `server` block; return once it accepts."""
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _ in range(attempts):
        port = free_port()
        tls_lines = f"        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};" if tls else ""
        config = _CONFIG.format(
            dir=directory,
            port=port,
            ssl=" ssl" if tls else "",
            tls=tls_lines,
            http=http_config,
            server=server_config,
        )
        config_path = directory / "nginx.conf"
        config_path.write_text(config)
        (directory / "error.log").write_text("")
        stderr_path = directory / "stderr.log"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [binary, "-p", f"{directory}/", "-e", str(directory / "error.log"), "-c", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        front = Nginx(process, port, directory, scheme="https" if tls else "http")
        if _wait_until_listening(front):
            return front
        front.stop()
        last_error = f"{stderr_path.read_text(errors='replace')}\n{front.error_log()}".strip()
        if "Address already in use" not in last_error:  # a port race is worth another try; nothing else is
            break
    raise RuntimeError(f"nginx did not start:\n{last_error}\nconfig:\n{config}")


def _wait_until_listening(front: Nginx) -> bool:
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


def uwsgi_params_include() -> str:
    """`include` of Debian's uwsgi_params (what users write), or the same variables inline without it."""
    if _UWSGI_PARAMS.exists():
        return f"include {_UWSGI_PARAMS};"
    names = {
        "QUERY_STRING": "$query_string",
        "REQUEST_METHOD": "$request_method",
        "CONTENT_TYPE": "$content_type",
        "CONTENT_LENGTH": "$content_length",
        "REQUEST_URI": "$request_uri",
        "PATH_INFO": "$document_uri",
        "DOCUMENT_ROOT": "$document_root",
        "SERVER_PROTOCOL": "$server_protocol",
        "REQUEST_SCHEME": "$scheme",
        "HTTPS": "$https if_not_empty",
        "REMOTE_ADDR": "$remote_addr",
        "REMOTE_PORT": "$remote_port",
        "SERVER_PORT": "$server_port",
        "SERVER_NAME": "$server_name",
    }
    return " ".join(f"uwsgi_param {name} {value};" for name, value in names.items())


def uwsgi_location(upstream: str, *, path: str = "/", extra: str = "") -> str:
    """A `location` passing requests to a uWSGI server: `upstream` is `127.0.0.1:PORT` or `unix:/path`."""
    return f"        location {path} {{ {uwsgi_params_include()} uwsgi_pass {upstream}; {extra} }}\n"


def proxy_location(upstream: str, *, path: str = "/", extra: str = "") -> str:
    """A `location` reverse-proxying HTTP/1.1 with WebSocket upgrades to `upstream` (`127.0.0.1:PORT`, or
    `unix:/path:` for a Unix socket), forwarding the client address and scheme in X-Forwarded-*."""
    return (
        f"        location {path} {{\n"
        f"            proxy_pass http://{upstream};\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Host $http_host;\n"
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_set_header X-Forwarded-Proto $scheme;\n"
        "            proxy_set_header Upgrade $http_upgrade;\n"
        "            proxy_set_header Connection $connection_upgrade;\n"
        f"            {extra}\n"
        "        }\n"
    )


class NginxFactory(Protocol):
    def __call__(
        self, server_config: str, *, http_config: str = "", tls: tuple[Path, Path] | None = None
    ) -> Nginx: ...


@pytest.fixture(name="nginx")
def nginx_fixture(tmp_path: Path) -> Iterator[NginxFactory]:
    """Start nginx instances for one test; all of them are stopped (by PID) when the test ends."""
    started: list[Nginx] = []

    def factory(server_config: str, *, http_config: str = "", tls: tuple[Path, Path] | None = None) -> Nginx:
        front = start_nginx(tmp_path / f"nginx-{len(started)}", server_config, http_config=http_config, tls=tls)
        started.append(front)
        return front

    try:
        yield factory
    finally:
        for front in started:
            front.stop()
