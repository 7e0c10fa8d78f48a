"""`gunicorn-asgi`: Gunicorn's command line with this worker chosen and this package's settings added.

Every Gunicorn option works as it does with `gunicorn`; `gunicorn-asgi --help` lists ours under theirs.
"""

from __future__ import annotations

import sys
from typing import Any

from gunicorn.app.wsgiapp import WSGIApplication

from ._settings import register

WORKER_CLASS = "gunicorn_asgi.Worker"


class ASGIApplication(WSGIApplication):
    def init(self, parser: Any, opts: Any, args: list[str]) -> dict[str, Any]:
        super().init(parser, opts, args)
        # Applied before the config file, the environment and the command line, so any of them may still
        # name another worker class; load_config warns when one does.
        return {"worker_class": WORKER_CLASS}

    def load_config(self) -> None:
        super().load_config()
        chosen = self.cfg.worker_class_str
        if chosen not in (WORKER_CLASS, "egg:gunicorn-asgi#asgi", "gunicorn_asgi.worker.ASGIWorker"):
            sys.stderr.write(
                f"gunicorn-asgi: warning: worker_class is set to {chosen!r}, not this package's worker\n"
            )


def main() -> None:
    register()
    ASGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn-asgi").run()


if __name__ == "__main__":
    main()
