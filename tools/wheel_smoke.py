#!/usr/bin/env python3
"""The test command of the compiled release wheels (cibuildwheel.toml): with a package's wheel installed, check
that every module its mypyc build hook compiles is imported as an extension module, then serve one real
exchange with the package on a loopback socket.

    python tools/wheel_smoke.py packages/asgi-http1 [--interpreted]

The modules that must be compiled are read from the package's pyproject.toml (the hook's `include` minus its
`exclude`), so a build that silently compiled fewer fails here. `--interpreted` skips that check: the test suite
runs the exchanges against the source install (tests/test_release_wheels.py), so that they keep up with the
packages between releases. Only the standard library, the package and its own dependencies are used.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path, PurePosixPath
from typing import Any

from asgi_core import Config, Receive, Scope, Send, serve

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the wheels are built for 3.11+; tests on 3.10 have pytest's tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 20.0
BODY = b"hello from the wheel"

Check = Callable[[int], Awaitable[None]]


def hook_table(package_dir: Path) -> dict[str, Any]:
    pyproject = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))
    hook: dict[str, Any] = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]
    return hook


def expected_compiled_modules(package_dir: Path) -> list[str]:
    """Every module under the hook's `include` paths and not under its `exclude` paths (plain path prefixes,
    as the packages write them), by dotted name."""
    hook = hook_table(package_dir)
    patterns = [*hook.get("include", []), *hook.get("exclude", [])]
    if any(char in pattern for pattern in patterns for char in "*?[!"):
        raise SystemExit(f"{package_dir}: wheel_smoke reads plain paths in include/exclude, not {patterns}")
    modules = []
    for source in sorted((package_dir / "src").rglob("*.py")):
        relative = source.relative_to(package_dir).as_posix()
        included = any(_under(relative, prefix) for prefix in hook.get("include", []))
        if included and not any(_under(relative, prefix) for prefix in hook.get("exclude", [])):
            modules.append(".".join(PurePosixPath(relative).relative_to("src").with_suffix("").parts))
    return modules


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def check_compiled(package_dir: Path) -> list[str]:
    """Import every module the hook compiles; fail naming those that came from source."""
    modules = expected_compiled_modules(package_dir)
    if not modules:
        raise SystemExit(f"{package_dir}: its build hook compiles nothing; is this a compiled package?")
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    interpreted = [name for name in modules if not str(importlib.import_module(name).__file__).endswith(suffixes)]
    if interpreted:
        raise SystemExit(f"not compiled (imported from source): {interpreted}")
    return modules


# ---- one exchange per package ------------------------------------------------------------------------------


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more_body = True
    while more_body:
        message = await receive()
        body += message.get("body", b"")
        more_body = message.get("more_body", False)
    reply = f"{scope['method']} {scope['path']} HTTP/{scope['http_version']} ".encode() + body
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": reply})


async def with_server(check: Check, **serve_args: Any) -> None:
    """asgi_core.serve on a free loopback port around `check(port)`, then a graceful stop."""
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def ready(server: Any) -> None:
        bound.set_result(server.sockets[0].getsockname()[1])

    task = asyncio.create_task(serve(echo_app, port=0, stop=stop, ready=ready, **serve_args))
    try:
        port = await asyncio.wait_for(asyncio.shield(bound), DEADLINE)
        await asyncio.wait_for(check(port), DEADLINE)
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def core_exchange() -> None:
    """asgi-core alone has no wire protocol: serve the documentation's line protocol (examples/line_protocol.py),
    which runs asgi-core's Server, scope builder and request cycle."""
    spec = importlib.util.spec_from_file_location("line_protocol", ROOT / "examples" / "line_protocol.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {ROOT / 'examples' / 'line_protocol.py'}")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    async def check(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"post /smoke %d\n%s" % (len(BODY), BODY))
        answer = await reader.read()  # one request per connection: the server closes after the response
        writer.close()
        expected = b"POST /smoke HTTP/1.1 " + BODY
        if not answer.startswith(b"200\n") or b"%x\n%s0\n" % (len(expected), expected) not in answer:
            raise SystemExit(f"asgi-core's line protocol answered {answer!r}")

    await with_server(check, protocol_factory=example.PLUGIN.create_protocol)


async def http1_exchange() -> None:
    """Two requests on one HTTP/1.1 connection (keep-alive), through the plugin found by entry point."""

    def requests(port: int) -> list[tuple[int, bytes]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
        answers = []
        for method, body in (("POST", BODY), ("GET", None)):
            connection.request(method, "/smoke", body=body)
            response = connection.getresponse()
            answers.append((response.status, response.read()))
        connection.close()
        return answers

    async def check(port: int) -> None:
        answers = await asyncio.to_thread(requests, port)
        if answers != [(200, b"POST /smoke HTTP/1.1 " + BODY), (200, b"GET /smoke HTTP/1.1 ")]:
            raise SystemExit(f"asgi-http1 answered {answers!r}")

    await with_server(check)


async def h2_exchange() -> None:
    """One HTTP/2 request with a body, by prior knowledge, with the h2 library (asgi-h2's own dependency)."""
    # Imported here: only asgi-h2's environment has h2.
    import h2.config  # noqa: PLC0415
    import h2.connection  # noqa: PLC0415
    import h2.events  # noqa: PLC0415

    async def check(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", "smoke"), (":path", "/smoke")]
        client.send_headers(1, headers)
        client.send_data(1, BODY, end_stream=True)
        writer.write(client.data_to_send())
        status, body, ended = None, b"", False
        while not ended and (data := await reader.read(65536)):
            for event in client.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers or [])[b":status"]
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data or b""
                    client.acknowledge_received_data(event.flow_controlled_length or 0, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            writer.write(client.data_to_send())
        client.close_connection()
        writer.write(client.data_to_send())
        writer.close()
        if (status, body, ended) != (b"200", b"POST /smoke HTTP/2 " + BODY, True):
            raise SystemExit(f"asgi-h2 answered {status!r} {body!r} (stream ended: {ended})")

    await with_server(check, config=Config(protocol="h2"))


EXCHANGES: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
    "asgi-core": core_exchange,
    "asgi-http1": http1_exchange,
    "asgi-h2": h2_exchange,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="the package's directory, e.g. packages/asgi-core")
    parser.add_argument("--interpreted", action="store_true", help="skip the compiled-modules check")
    args = parser.parse_args()
    package_dir: Path = args.package.resolve()
    name = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    if name not in EXCHANGES:
        raise SystemExit(f"no smoke exchange for {name}: add one to {Path(__file__).name}")
    if not args.interpreted:
        compiled = check_compiled(package_dir)
        print(f"[smoke] {name}: {len(compiled)} modules imported compiled", file=sys.stderr)
    asyncio.run(EXCHANGES[name]())
    print(f"[smoke] {name}: served an exchange", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
