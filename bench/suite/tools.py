"""The system tools the suite drives (wrk, h2load, nginx, openssl, taskset), certificates, and nginx's config."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

# Debian package for each command the suite needs.
PACKAGES = {
    "wrk": "wrk",
    "h2load": "nghttp2-client",
    "nginx": "nginx",
    "openssl": "openssl",
    "taskset": "util-linux",
}


class ToolError(RuntimeError):
    pass


def which(command: str) -> str | None:
    # nginx lives in /usr/sbin, which is not on every user's PATH.
    return shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")


def ensure_tools(commands: list[str]) -> None:
    """Install missing tools with apt-get when running as root; otherwise say which are missing and how."""
    missing = [command for command in commands if which(command) is None]
    if not missing:
        return
    packages = sorted({PACKAGES[command] for command in missing})
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolError(
            f"missing {', '.join(missing)}: install them with `apt-get install -y {' '.join(packages)}`"
        )
    print(f"installing {' '.join(packages)} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(install, env=env, check=False, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, timeout=600)
        subprocess.run(install, env=env, check=True, timeout=600)
    still = [command for command in commands if which(command) is None]
    if still:
        raise ToolError(f"still missing after apt-get: {', '.join(still)}")


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def tool_versions(commands: list[str]) -> dict[str, str]:
    probes = {
        "wrk": ["wrk", "--version"],
        "h2load": ["h2load", "--version"],
        "nginx": [which("nginx") or "nginx", "-v"],
        "openssl": ["openssl", "version"],
    }
    return {command: _first_line(probes[command]) for command in commands if command in probes}


def machine_line() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"nproc {os.cpu_count()}, {model}, kernel {platform.release()}, "
        f"python {platform.python_version()} ({sys.executable})"
    )


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1, made for this run only and never kept."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


UWSGI_PARAMS = """
        uwsgi_param QUERY_STRING $query_string;
        uwsgi_param REQUEST_METHOD $request_method;
        uwsgi_param CONTENT_TYPE $content_type;
        uwsgi_param CONTENT_LENGTH $content_length;
        uwsgi_param REQUEST_URI $request_uri;
        uwsgi_param PATH_INFO $document_uri;
        uwsgi_param DOCUMENT_ROOT $document_root;
        uwsgi_param SERVER_PROTOCOL $server_protocol;
        uwsgi_param REQUEST_SCHEME $scheme;
        uwsgi_param HTTPS $https if_not_empty;
        uwsgi_param REMOTE_ADDR $remote_addr;
        uwsgi_param REMOTE_PORT $remote_port;
        uwsgi_param SERVER_PORT $server_port;
        uwsgi_param SERVER_NAME $server_name;"""


def nginx_config(directory: Path, routes: dict[int, int]) -> Path:
    """One nginx process, one `listen` per backend: front port -> `uwsgi_pass` to that backend's port."""
    servers = "".join(
        f"""
    server {{
        listen 127.0.0.1:{front};
        location / {{
            uwsgi_pass 127.0.0.1:{back};{UWSGI_PARAMS}
        }}
    }}"""
        for front, back in routes.items()
    )
    temp = directory / "nginx-temp"
    temp.mkdir(exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "nginx-error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;{servers}
}}
"""
    )
    return config
