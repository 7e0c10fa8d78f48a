"""Starting the worker: both Gunicorn spellings, the `gunicorn-asgi` command, the event loop, config files,
and the clear startup errors that stop Gunicorn instead of rebooting workers forever."""

from __future__ import annotations

import importlib.util
import json
import ssl
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from websockets.sync.client import connect

from tests.worker_fixture import EXAMPLES, ROOT, ServerFactory, serve_fixture  # noqa: F401

WORKER_BOOT_ERROR = 3


def test_plain_gunicorn_serves_with_either_worker_spelling(serve: ServerFactory) -> None:
    spellings = ("egg:gunicorn-asgi#asgi", "gunicorn_asgi.Worker")
    servers = [serve("--worker-class", spelling, command="gunicorn", wait=False) for spelling in spellings]
    for spelling, server in zip(spellings, servers, strict=True):
        server.wait_ready()
        response = httpx.get(server.url("/scope"))
        assert response.status_code == 200
        info = response.json()
        assert info["state"] == "hello from lifespan"  # lifespan ran before the first request
        assert info["http_version"] == "1.1"
        assert response.headers["server"] == "gunicorn-asgi"
        assert f"Using worker: {spelling}" in server.output()


@pytest.mark.parametrize("engine", ["h11", "httptools"])
def test_gunicorn_asgi_command_serves_the_readme_quick_start(serve: ServerFactory, engine: str) -> None:
    server = serve(app="demo_app:app", chdir=EXAMPLES, env={"ASGI_HTTP1_PARSER": engine})
    assert httpx.get(server.url("/")).text == "Hello, world!\n"
    assert httpx.get(server.url("/json")).json()["message"] == "Hello, world!"
    assert httpx.post(server.url("/echo"), content=b"x" * 100_000).content == b"x" * 100_000
    with httpx.stream("GET", server.url("/stream")) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.read() == b"".join(f"chunk {i}\n".encode() for i in range(10))
    # The README's WebSocket route echoes text and binary messages.
    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10) as websocket:
        websocket.send("hello")
        assert websocket.recv(timeout=5) == "hello"
        websocket.send(b"\x00\xff")
        assert websocket.recv(timeout=5) == b"\x00\xff"
    assert httpx.get(server.url("/ws")).status_code == 426  # plain GET: told to upgrade
    assert "Using worker: gunicorn_asgi.Worker" in server.output()
    assert "Error" not in server.output()


def test_demo_h2_serves_the_demo_over_http2_with_a_throwaway_certificate(
    serve: ServerFactory, tmp_path: Path
) -> None:
    # The same certificate and arguments as `python3 dev.py demo-h2`.
    dev = _load_dev()
    cert, key = dev.demo_certificate(tmp_path / "tls")
    context = ssl.create_default_context(cafile=str(cert))
    server = serve(*dev.demo_h2_args(cert, key), app="demo_app:app", chdir=EXAMPLES, tls=context)
    with httpx.Client(http2=True, verify=context) as client:
        response = client.get(server.url("/json"))
        assert response.http_version == "HTTP/2"
        assert response.json()["http_version"] == "2"
        assert client.get(server.url("/stream")).text.count("chunk") == 10
    with httpx.Client(http2=False, verify=context) as client:  # HTTP/1.1 is still offered by ALPN
        assert client.get(server.url("/json")).json()["http_version"] == "1.1"


def _load_dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_asgi_loop_selects_the_event_loop(serve: ServerFactory) -> None:
    expected = {"asyncio": "asyncio", "uvloop": "uvloop", "auto": "uvloop"}  # uvloop is installed here
    servers = {loop: serve("--asgi-loop", loop, wait=False) for loop in expected}
    for loop, server in servers.items():
        server.wait_ready()
        assert httpx.get(server.url("/scope")).json()["loop"].startswith(expected[loop])
        assert f"on {expected[loop]}," in server.output()


def test_config_file_sets_gunicorn_and_gunicorn_asgi_settings(serve: ServerFactory, tmp_path: Path) -> None:
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("root_path = '/api'\nserver_header = False\nmax_request_body_size = 10\nkeepalive = 7\n")
    server = serve("--config", str(config))
    response = httpx.get(server.url("/scope"))
    assert response.json()["root_path"] == "/api"
    assert response.json()["path"] == "/api/scope"
    assert "server" not in response.headers
    assert httpx.post(server.url("/echo"), content=b"0123456789").text == "10"
    assert httpx.post(server.url("/echo"), content=b"0123456789!").status_code == 413


def test_our_settings_on_the_command_line_and_in_help(serve: ServerFactory) -> None:
    import subprocess

    from tests.worker_fixture import BIN

    help_text = subprocess.run(
        [str(BIN / "gunicorn-asgi"), "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for flag in (
        "--header-timeout",
        "--max-request-body-size",
        "--lifespan-startup-timeout",
        "--no-server-header",
    ):
        assert flag in help_text
    server = serve("--max-request-body-size", "4", "--no-date-header")
    response = httpx.post(server.url("/echo"), content=b"12345")
    assert response.status_code == 413
    assert "date" not in response.headers


def test_plain_gunicorn_does_not_know_our_settings(serve: ServerFactory) -> None:
    server = serve(
        "--worker-class", "gunicorn_asgi.Worker", "--header-timeout", "5", command="gunicorn", wait=False
    )
    assert server.wait_exit() != 0
    assert "unrecognized arguments: --header-timeout" in server.output()


#: (arguments, environment, app, what the log must say): each stops Gunicorn with WORKER_BOOT_ERROR.
STARTUP_ERRORS = {
    "bad root_path": (["--root-path", "api"], {}, None, "invalid value for root_path (--root-path): 'api'"),
    "bad limit": (
        ["--limit-request-fields", "40000"],
        {},
        None,
        "invalid value for limit_request_fields (--limit-request-fields): 40000",
    ),
    "unknown protocol": (
        ["--protocol", "gopher"],
        {},
        None,
        "invalid value for protocol (--protocol): 'gopher'; accepted: an installed protocol",
    ),
    "wsgi app": ([], {}, "worker_apps:wsgi_app", "looks like a WSGI application"),
    "lifespan failed": (
        [],
        {"WORKER_TEST_LIFESPAN": "fail"},
        None,
        "ASGI lifespan startup failed: database unreachable (test)",
    ),
    "lifespan timeout": (
        ["--lifespan-startup-timeout", "0.5"],
        {"WORKER_TEST_LIFESPAN": "hang"},
        None,
        "did not complete within 0.5 s (setting lifespan_startup_timeout)",
    ),
    "lifespan on, app without it": (
        ["--asgi-lifespan", "on"],
        {},
        "worker_apps:no_lifespan_app",
        "the application does not support the ASGI lifespan protocol",
    ),
    "uvloop missing": (
        ["--asgi-loop", "uvloop"],
        {"PYTHONPATH": "{no_uvloop}"},
        None,
        "invalid value for asgi_loop (--asgi-loop): 'uvloop'; accepted: auto or asyncio, as uvloop is not installed",
    ),
}


def _hide_uvloop(tmp_path: Path) -> str:
    """A directory whose `uvloop` package cannot be imported: first on the path, as if uvloop were missing."""
    fake = tmp_path / "no_uvloop" / "uvloop"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('uvloop hidden by the test')\n")
    return str(fake.parent)


def test_startup_errors_stop_gunicorn_with_a_clear_message(serve: ServerFactory, tmp_path: Path) -> None:
    no_uvloop = _hide_uvloop(tmp_path)
    servers = {}
    for case, (args, env, app, _) in STARTUP_ERRORS.items():
        environment = {name: value.format(no_uvloop=no_uvloop) for name, value in env.items()}
        servers[case] = serve(*args, env=environment, app=app or "worker_apps:app", wait=False)
    for case, server in servers.items():
        assert server.wait_exit() == WORKER_BOOT_ERROR, case
        output = server.output()
        assert STARTUP_ERRORS[case][3] in output, output
        assert "Reason: Worker failed to boot." in output
        assert output.count("Booting worker") == 1  # no reboot loop


def test_auto_loop_falls_back_to_asyncio_without_uvloop(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve("--asgi-loop", "auto", env={"PYTHONPATH": _hide_uvloop(tmp_path)})
    assert httpx.get(server.url("/scope")).json()["loop"] == "asyncio.unix_events"


def test_lifespan_off_and_threads_ignored_with_a_warning(serve: ServerFactory) -> None:
    server = serve("--asgi-lifespan", "off", "--threads", "4", env={"WORKER_TEST_LIFESPAN": "fail"})
    assert json.loads(httpx.get(server.url("/scope")).text)["state"] is None  # the failing startup never ran
    assert "--threads 4 is ignored by the gunicorn-asgi worker" in server.output()
