"""The servers under test: how each is installed (its own venv), launched per protocol, and what it can do.

Every server runs the same `bench/app.py` with one worker, no access log, a 30 s keep-alive (so the idle
connections of the memory scenario stay open), and the event loop and parser each project recommends for
speed. A scenario a server cannot do at all is left out here and reported as n/a; one it claims but fails
at is found by the probe and reported as n/a with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
VENVS = BENCH / ".venvs"

HTTP1 = frozenset({"plaintext", "json", "post", "close", "stream", "1mib", "memory"})
#: The HTTP/2 scenarios: h2load with 16, 1 and 100 streams per connection.
H2 = frozenset({"h2", "h2-1", "h2-100"})
ALL = HTTP1 | H2 | {"ws", "uwsgi"}

# The local packages that make up ours, in dependency order.
OUR_PACKAGES = ("asgi-core", "asgi-http1", "asgi-ws", "asgi-h2", "asgi-uwsgi", "gunicorn-asgi")
OUR_DISTS = ("asgi-core", "asgi-http1", "asgi-wsproto", "asgi-h2", "asgi-uwsgi", "gunicorn-asgi")


@dataclass(frozen=True)
class Launch:
    """What a launch needs: the interpreter's bin directory, where to listen, and how."""

    bin: Path
    port: int
    protocol: str  # "http", "h2" (TLS with ALPN) or "uwsgi"
    scenario: str
    cert: Path | None = None
    key: Path | None = None
    ours_worker: bool = False

    def tool(self, name: str) -> str:
        return str(self.bin / name)


@dataclass(frozen=True)
class ServerSpec:
    name: str
    title: str
    venv: str  # directory name under bench/.venvs; "tools" holds the limit server and the load clients
    # Requirement sets tried in order until one installs (an optional speed-up may not exist for this Python).
    requirements: tuple[tuple[str, ...], ...]
    scenarios: frozenset[str]
    versions_of: tuple[str, ...]

    def command(self, launch: Launch) -> list[str]:
        return _COMMANDS[self.name](launch)


ServerCommand = Callable[[Launch], list[str]]


def _limit(launch: Launch) -> list[str]:
    command = [launch.tool("python"), str(BENCH / "servers" / "limit.py"), "--port", str(launch.port)]
    command += ["--scenario", launch.scenario]
    if launch.protocol == "h2":
        command += ["--certfile", str(launch.cert), "--keyfile", str(launch.key)]
    return command


def _gunicorn_common(launch: Launch) -> list[str]:
    common = ["-w", "1", "--asgi-loop", "uvloop", "--bind", f"127.0.0.1:{launch.port}", "--chdir", str(BENCH)]
    common += ["--no-control-socket"]
    common += ["--keep-alive", "30", "--worker-connections", "4096", "--backlog", "2048", "--log-level", "warning"]
    if launch.protocol == "uwsgi":
        common += ["--protocol", "uwsgi"]
    if launch.protocol == "h2":
        common += ["--certfile", str(launch.cert), "--keyfile", str(launch.key), "--http-protocols", "h2,h1"]
    return common


def _ours(launch: Launch) -> list[str]:
    if launch.ours_worker:
        worker = ["--worker-class", "egg:gunicorn-asgi#asgi"]
        return [launch.tool("gunicorn-asgi"), *worker, *_gunicorn_common(launch), "app:app"]
    command = [launch.tool("python"), str(BENCH / "servers" / "ours_standalone.py"), "--port", str(launch.port)]
    command += ["--protocol", launch.protocol]
    if launch.protocol == "h2":
        command += ["--certfile", str(launch.cert), "--keyfile", str(launch.key)]
    return command


def _gunicorn(launch: Launch) -> list[str]:
    return [launch.tool("gunicorn"), "-k", "asgi", *_gunicorn_common(launch), "app:app"]


def _uvicorn(http: str, ws: str) -> ServerCommand:
    def command(launch: Launch) -> list[str]:
        return [
            launch.tool("uvicorn"), "--host", "127.0.0.1", "--port", str(launch.port), "--loop", "uvloop",
            "--http", http, "--ws", ws, "--no-access-log", "--log-level", "warning",
            "--timeout-keep-alive", "30", "--backlog", "2048", "--app-dir", str(BENCH), "app:app",
        ]  # fmt: skip

    return command


def _hypercorn(launch: Launch) -> list[str]:
    command = [launch.tool("hypercorn"), "--bind", f"127.0.0.1:{launch.port}", "--workers", "1"]
    command += ["--worker-class", "uvloop", "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning"]
    if launch.protocol == "h2":
        command += ["--certfile", str(launch.cert), "--keyfile", str(launch.key)]
    return [*command, "app:app"]


def _granian(launch: Launch) -> list[str]:
    command = [launch.tool("granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(launch.port)]
    command += ["--workers", "1", "--runtime-threads", "1", "--loop", "uvloop", "--http", "auto"]
    command += ["--no-access-log", "--log-level", "warning", "--backlog", "2048"]
    if launch.protocol == "h2":
        command += ["--ssl-certificate", str(launch.cert), "--ssl-keyfile", str(launch.key)]
    return [*command, "app:app"]


_COMMANDS = {
    "limit": _limit,
    "ours": _ours,
    "gunicorn": _gunicorn,
    "uvicorn-httptools": _uvicorn("httptools", "websockets"),
    "uvicorn-h11": _uvicorn("h11", "wsproto"),
    "hypercorn": _hypercorn,
    "granian": _granian,
}

SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "limit",
            "limit (canned replies on uvloop)",
            "tools",
            (("uvloop>=0.19",),),
            ALL,
            ("uvloop",),
        ),
        ServerSpec(
            "ours",
            "gunicorn-asgi (ours)",
            "ours",
            (("uvloop>=0.19", "httptools>=0.9"),),  # as gunicorn-asgi[all]; plus the local packages (venvs.py)
            ALL,
            (*OUR_DISTS, "gunicorn", "h11", "httptools", "wsproto", "h2", "uvloop"),
        ),
        ServerSpec(
            "gunicorn",
            "Gunicorn 27 -k asgi + uvloop",
            "gunicorn",
            (("gunicorn[http2,fast]>=27,<28", "uvloop>=0.19"), ("gunicorn[http2]>=27,<28", "uvloop>=0.19")),
            ALL,
            ("gunicorn", "gunicorn_h1c", "h2", "uvloop"),
        ),
        ServerSpec(
            "uvicorn-httptools",
            "uvicorn + httptools + uvloop",
            "uvicorn-httptools",
            (("uvicorn", "httptools", "uvloop>=0.19", "websockets"),),
            HTTP1 | {"ws"},
            ("uvicorn", "httptools", "websockets", "uvloop"),
        ),
        ServerSpec(
            "uvicorn-h11",
            "uvicorn + h11 + uvloop",
            "uvicorn-h11",
            (("uvicorn", "h11", "wsproto", "uvloop>=0.19"),),
            HTTP1 | {"ws"},
            ("uvicorn", "h11", "wsproto", "uvloop"),
        ),
        ServerSpec(
            "hypercorn",
            "hypercorn + uvloop",
            "hypercorn",
            (("hypercorn", "uvloop>=0.19"),),
            HTTP1 | H2 | {"ws"},
            ("hypercorn", "h11", "h2", "wsproto", "uvloop"),
        ),
        ServerSpec(
            "granian",
            "granian (ASGI) + uvloop",
            "granian",
            (("granian", "uvloop>=0.19"),),
            HTTP1 | H2 | {"ws"},
            ("granian", "uvloop"),
        ),
    )
}
