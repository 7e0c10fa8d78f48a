"""Our protocols in asgi-core's standalone server on uvloop: the stand-in for ours while the worker is missing.

The protocol comes from the asgi-core registry by name (`http`, `uwsgi`, `h2`), so a protocol package that
is not installed yet is reported (exit status 3, which the suite shows as n/a) rather than guessed at.

    python bench/servers/ours_standalone.py --port 8000 [--protocol uwsgi] [--certfile C --keyfile K]
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path

import uvloop
from asgi_core import Config, Registry, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import app

UNAVAILABLE = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", default="http", help="a name in the asgi_core.protocols registry")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    plugin = Registry().protocol(args.protocol)
    if plugin is None:
        print(f"ours_standalone: protocol {args.protocol!r} is not installed", file=sys.stderr)
        return UNAVAILABLE
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
        context.set_alpn_protocols(list(plugin.alpn))
    # Idle connections outlive the memory scenario's measurement; everything else stays at its default.
    config = Config(keep_alive_timeout=30.0)
    uvloop.run(
        serve(app, plugin.create_protocol, host=args.host, port=args.port, config=config, ssl_context=context)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
