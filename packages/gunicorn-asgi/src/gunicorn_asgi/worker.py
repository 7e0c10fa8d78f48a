"""The Gunicorn worker: one event loop serving an ASGI app on the arbiter's listening sockets.

Life of a worker process, after Gunicorn forks it:

1. `init_process`: settings are turned into the protocol plan, the asgi-core `Config`, the TLS context and
   the loop factory *before* the app is imported; any mistake there is a `StartupError`. Gunicorn then
   imports the app and calls `run`.
2. `run`: a new loop (asyncio or uvloop) runs `_serve`: signal handlers and the heartbeat start, lifespan
   startup completes, and only then does the worker accept connections.
3. A stop request (SIGTERM, SIGINT/SIGQUIT, `max_requests`, the parent gone, the reloader) ends accepting;
   asgi-core's `Server` drains the connections without losing a request (graceful: bounded by
   `graceful_timeout`; quick: what is open is told and closed at once); lifespan shutdown runs on every path
   that started it.

A startup failure (a bad setting, a certificate that does not load, lifespan startup failing) exits with
Gunicorn's WORKER_BOOT_ERROR status: the arbiter then stops with that message and a non-zero exit status
instead of rebooting workers that would fail the same way.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import ssl
import sys
import traceback
from types import FrameType
from typing import Any, NoReturn

from asgi_core import (
    ASGIApp,
    Config,
    ConfigError,
    Lifespan,
    LifespanFailure,
    LoopFactory,
    Receive,
    Registry,
    Scope,
    Send,
    Server,
    app_problem,
    loop_factory,
    plan_protocols,
    run,
)
from asgi_wsproto import WebSocketProtocol
from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from .__about__ import __version__
from ._access_log import is_custom_hook, make_access_logger
from ._config_map import build_config, setting, startup_error
from ._errors import StartupError
from ._exporter import start_exporter
from ._heap import keep_heap
from ._hooks import wrap_app
from ._memory import MIB, MemoryWatch
from ._metrics import WorkerMetrics
from ._ops_settings import parse_bind
from ._tls import build_ssl_context, certificate_files

WORKER_BOOT_ERROR: int = Arbiter.WORKER_BOOT_ERROR


class ASGIWorker(Worker):
    """Serves an ASGI app over HTTP/1.1 and every protocol installed in the asgi-core registry.

    Select it with `--worker-class egg:gunicorn-asgi#asgi` or `--worker-class gunicorn_asgi.Worker`, or run
    the `gunicorn-asgi` command, which also adds this package's settings.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop_name = "asyncio"
        self.loop_factory: LoopFactory = asyncio.new_event_loop
        self.protocol_config = Config()
        self.registry: Registry | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.server: Server | None = None
        self._stop: asyncio.Event | None = None
        self._quick: asyncio.Event | None = None
        self._restarting = False
        #: Reads the RSS from the heartbeat when --max-worker-memory (or the metrics) need it.
        self.memory: MemoryWatch | None = None
        self.metrics: WorkerMetrics | None = None

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        threads = setting(cfg, "threads", 1)
        if threads > 1:
            log.warning(
                "--threads %s is ignored by the gunicorn-asgi worker: each worker serves many connections on "
                "one event loop; scale with --workers and --worker-connections",
                threads,
            )
        # Runs in the master before any worker is forked: the metrics directory must exist by then.
        bind = parse_bind(setting(cfg, "metrics_bind"))
        if bind is not None:
            try:
                directory = start_exporter(bind, cfg.env_orig)
            except StartupError as exc:
                raise RuntimeError(str(exc)) from None  # Gunicorn prints it and exits with status 1
            log.info("Prometheus metrics at http://%s:%s/metrics (files in %s)", *bind, directory)

    # ---- boot ----------------------------------------------------------------------------------------

    def init_process(self) -> None:
        self.log.debug("gunicorn-asgi worker: %s", keep_heap())
        try:
            self._prepare()
        except StartupError as exc:
            self._boot_failed(str(exc))
        super().init_process()

    def _prepare(self) -> None:
        """Everything that depends on settings alone, checked before the app is imported."""
        cfg = self.cfg
        self.registry = Registry(logger=self.log.error_log)
        self.protocol_config = build_config(cfg)
        self.ssl_context = build_ssl_context(cfg)
        limit = int(setting(cfg, "max_worker_memory", 0) or 0)
        if parse_bind(setting(cfg, "metrics_bind")) is not None:
            self.metrics = WorkerMetrics()
        if limit or self.metrics is not None:
            self.memory = MemoryWatch(limit * MIB)  # a limit of 0 only reads, for the RSS gauge
        try:
            self.loop_name, self.loop_factory = loop_factory(setting(cfg, "asgi_loop", "auto") or "auto")
            # That every protocol asked for is installed: the Server plans the same way once the app is loaded.
            plan_protocols(self.registry, self.protocol_config, tls=self.ssl_context is not None)
        except ConfigError as exc:
            raise startup_error(exc) from None

    def load_wsgi(self) -> None:
        # Gunicorn's own version substitutes a WSGI error app on a SyntaxError under --reload; ours is ASGI.
        try:
            self.wsgi = self.app.wsgi()
        except SyntaxError as exc:
            if not self.cfg.reload:
                raise
            self.log.exception("the application failed to import; serving an error page until it is fixed")
            if self.reloader is not None and exc.filename is not None:
                self.reloader.add_extra_file(exc.filename)
            self.wsgi = _error_app("".join(traceback.format_exception_only(type(exc), exc)))

    def _boot_failed(self, message: str) -> NoReturn:
        self.log.error("gunicorn-asgi worker cannot start: %s", message)
        sys.exit(WORKER_BOOT_ERROR)

    # ---- run -----------------------------------------------------------------------------------------

    def run(self) -> None:
        problem = app_problem(self.wsgi)
        if problem:
            self._boot_failed(problem)
        status = run(self._serve(), self.loop_factory)
        if status:
            sys.exit(status)

    async def _serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._quick = asyncio.Event()
        if not self.alive:  # a stop signal arrived while the app was being imported
            return 0
        self._install_signal_handlers(loop)
        heartbeat = loop.create_task(self._heartbeat())
        lifespan = Lifespan(self.wsgi, self.protocol_config, logger=self.log.error_log)
        try:
            try:
                await lifespan.startup()
            except LifespanFailure as exc:
                # The message is the whole story (the app's own reason); a traceback would only add noise.
                self.log.error("%s; stopping (the app cannot serve)", exc)  # noqa: TRY400
                return WORKER_BOOT_ERROR
            try:
                if self.alive:
                    await self._serve_connections(lifespan.state)
            finally:
                try:
                    await lifespan.shutdown()
                except LifespanFailure as exc:
                    self.log.error("%s", exc)  # noqa: TRY400 - as above
        finally:
            heartbeat.cancel()
            if self.metrics is not None:
                self.metrics.close()
        return 0

    async def _serve_connections(self, state: dict[str, Any] | None) -> None:
        stop, quick_stop = self._stop, self._quick
        if stop is None or quick_stop is None:
            raise RuntimeError("_serve_connections runs only after _serve set the worker up")
        cfg = self.cfg
        pre_request = setting(cfg, "pre_request")
        app = wrap_app(
            self.wsgi,
            worker=self,
            pre_request=pre_request if is_custom_hook(pre_request) else None,
            on_request=self._count_request if setting(cfg, "max_requests", 0) > 0 else None,
        )
        self.server = server = Server(
            app,
            self.protocol_config,
            registry=self.registry,
            ssl_context=self.ssl_context,
            state=state,
            access_log=make_access_logger(
                self, self.log, cfg, (self.metrics.observe,) if self.metrics is not None else ()
            ),
            logger=self.log.error_log,
            certificate=certificate_files(cfg),
        )
        # What is alive now (Gunicorn, the app and its imports, the lifespan state) lives as long as the worker:
        # frozen, the cyclic GC no longer walks all of it at every full collection while requests are served.
        gc.collect()
        gc.freeze()
        await server.start([listener.sock for listener in self.sockets])
        self.log.info(
            "gunicorn-asgi %s serving %s on %s, worker_connections=%s",
            __version__,
            server.describe(),
            self.loop_name,
            self.protocol_config.max_connections,
        )
        await stop.wait()
        if quick_stop.is_set():
            server.hurry()
        # The arbiter SIGKILLs workers graceful_timeout after it asked them to stop: keep up to a second of that
        # for lifespan shutdown, which must not be killed half-way.
        graceful = float(setting(cfg, "graceful_timeout", 30))
        await server.shutdown(graceful - min(1.0, graceful / 4), restarting=self._restarting)

    # ---- stop requests -------------------------------------------------------------------------------

    def _request_stop(self, *, quick: bool = False) -> None:
        self.alive = False
        if self._quick is not None and quick:
            self._quick.set()
            if self.server is not None:
                self.server.hurry()  # a graceful drain under way is cut short too
        if self._stop is not None:
            self._stop.set()

    def _count_request(self) -> None:
        self.nr += 1
        if self.nr >= self.max_requests and not self._restarting and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self._recycle("max_requests")

    def _recycle(self, reason: str) -> None:
        """Retire this worker through the graceful drain; the arbiter starts its replacement."""
        if self.metrics is not None:
            self.metrics.recycled(reason)
        self._restarting = True
        # Drain before a request's response starts, so that response already says Connection: close.
        if self.server is not None:
            self.server.begin_drain(restarting=True)
        self._request_stop()

    def _watch_process(self, now: float) -> None:
        """From the heartbeat: the metrics' tallies; every `MemoryWatch.period`, the RSS against
        --max-worker-memory, and the gauges."""
        if self.metrics is not None:
            self.metrics.flush()  # the requests tallied since the last beat
        memory = self.memory
        if memory is None or not memory.due(now):
            return
        over = memory.over_limit()
        if self.metrics is not None:
            self.metrics.beat(self.server, memory.rss, WebSocketProtocol)
        if over and not self._restarting and self.alive and self.server is not None:
            self.log.warning(
                "worker RSS %.1f MiB is over --max-worker-memory %d MiB: recycling it (graceful drain)",
                memory.rss / MIB,
                memory.limit // MIB,
            )
            self._recycle("max_worker_memory")

    async def _heartbeat(self) -> None:
        # The arbiter kills a worker that has not notified within --timeout: beating from the loop itself
        # means a loop blocked by the app stops the beats, and the worker is replaced.
        interval = min(1.0, self.timeout / 2) if self.timeout > 0 else 1.0
        interval = max(interval, 0.05)
        loop = asyncio.get_running_loop()
        while True:
            self.notify()
            self._watch_process(loop.time())
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self._request_stop()
            elif not self.alive and self._stop is not None and not self._stop.is_set():
                # Cleared by another thread: Gunicorn's reloader, after which the arbiter starts a new worker.
                self._restarting = True
                self._request_stop()
            await asyncio.sleep(interval)

    # ---- signals -------------------------------------------------------------------------------------

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        # SIGABRT keeps the plain handler Gunicorn installed (see handle_abort): it must run even while the
        # loop is blocked, which a loop-dispatched handler would not.
        loop.add_signal_handler(signal.SIGTERM, self._on_term)
        loop.add_signal_handler(signal.SIGINT, self._on_quit)
        loop.add_signal_handler(signal.SIGQUIT, self._on_quit)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        loop.add_signal_handler(signal.SIGWINCH, self.log.debug, "worker: SIGWINCH ignored.")

    def _on_term(self) -> None:
        self._request_stop()

    def _on_quit(self) -> None:
        if self._quick is not None and not self._quick.is_set():
            self.cfg.worker_int(self)
        self._request_stop(quick=True)

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        # The arbiter sends SIGABRT when the heartbeat stopped for --timeout: the loop is blocked. Say where.
        if frame is not None:
            stack = "".join(traceback.format_stack(frame))
            self.log.critical("worker timed out; its event loop was blocked at:\n%s", stack.rstrip())
        super().handle_abort(sig, frame)


def _error_app(message: str) -> ASGIApp:
    """Stands in for an app that failed to import under --reload, until the next change fixes it."""
    body = f"Application failed to load:\n{message}".encode()

    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    return app
