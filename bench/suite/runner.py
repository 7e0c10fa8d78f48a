"""One benchmark run: prepare the servers, then per scenario start them, probe them, and load them round by
round in rotating order (A B C, B C A, ...) so that a noisy machine hurts every server alike."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import memory, report, tools, venvs
from .procs import ServerProcess, cpu_seconds, free_port, pinned, rss_bytes, wait_port
from .scenarios import (
    SCENARIOS,
    Measurement,
    Scenario,
    probe_h2,
    probe_http,
    probe_ws,
    run_h2load,
    run_wrk,
    run_ws,
)
from .servers import BENCH, SERVERS, Launch

UNAVAILABLE = 3  # exit status of ours_standalone.py for a protocol that is not installed
_LACKS = {"h2": "no HTTP/2", "uwsgi": "no uWSGI protocol"}


@dataclass
class Options:
    scenarios: list[str]
    servers: list[str]
    rounds: int
    duration: float
    warmup: float
    smoke: bool
    here: bool
    ours_compiled: bool
    results_dir: Path
    update_readme: bool
    server_cpu: int | None
    client_cpu: int | None
    memory: memory.MemorySettings
    command: str


@dataclass
class Prepared:
    """What the run knows about each server before the first scenario: where it lives, or why it cannot run."""

    bins: dict[str, Path] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    ours_worker: bool = False
    ours_mode: str = "not run"
    tools_python: str = sys.executable


def prepare(options: Options) -> Prepared:
    prepared = Prepared()
    here = Path(sys.executable).parent
    if options.here:
        prepared.tools_python = sys.executable
    else:
        tools_bin = venvs.venv_bin("tools")
        venvs.ensure_peer(SERVERS["limit"])
        prepared.tools_python = str(tools_bin / "python")
    for name in options.servers:
        spec = SERVERS[name]
        notes: list[str] = []
        try:
            if options.here and name in {"ours", "limit"}:
                bin_dir = here
                notes.append(f"run with {sys.executable} (--here)")
            elif name == "ours":
                notes = venvs.ensure_ours(spec, compiled=options.ours_compiled)
                bin_dir = venvs.venv_bin(spec.venv)
            else:
                notes = venvs.ensure_peer(spec)
                bin_dir = venvs.venv_bin(spec.venv)
        except (venvs.InstallError, subprocess.SubprocessError, OSError) as exc:
            prepared.unavailable[name] = f"install failed: {exc}"
            prepared.info[name] = {"title": spec.title, "versions": {}, "notes": [str(exc)[:300]]}
            continue
        prepared.bins[name] = bin_dir
        prepared.info[name] = {"title": spec.title, "versions": venvs.versions(bin_dir, spec.versions_of)}
        prepared.info[name]["notes"] = notes
    if "ours" in prepared.bins:
        prepared.ours_worker, why = venvs.ours_worker_available(prepared.bins["ours"])
        if prepared.ours_worker:
            prepared.ours_mode = "`gunicorn-asgi -w 1 --worker-class egg:gunicorn-asgi#asgi --asgi-loop uvloop`"
        else:
            prepared.ours_mode = f"standalone `asgi_core.serve` on uvloop (servers/ours_standalone.py): {why}"
        prepared.info["ours"]["notes"].append(prepared.ours_mode)
    return prepared


class ScenarioRun:
    """The servers of one scenario, started together on the server core and stopped together at the end."""

    def __init__(self, options: Options, prepared: Prepared, scenario: Scenario, workdir: Path) -> None:
        self.options = options
        self.prepared = prepared
        self.scenario = scenario
        self.workdir = workdir
        self.servers: dict[str, ServerProcess] = {}
        self.targets: dict[str, int] = {}  # the port the load goes to (nginx's, for uWSGI)
        self.nginx: ServerProcess | None = None
        self.results: dict[str, dict[str, Any]] = {}

    def _launch(self, name: str, cert: Path | None, key: Path | None) -> None:
        port = free_port()
        launch = Launch(
            bin=self.prepared.bins[name],
            port=port,
            protocol=self.scenario.protocol,
            scenario=self.scenario.name,
            cert=cert,
            key=key,
            ours_worker=self.prepared.ours_worker,
        )
        env = {**os.environ, "PYTHONPATH": str(BENCH), "PYTHONUNBUFFERED": "1"}
        env.pop("VIRTUAL_ENV", None)
        server = ServerProcess(
            name=name,
            command=pinned(self.options.server_cpu, SERVERS[name].command(launch)),
            port=port,
            cwd=BENCH,
            env=env,
            log_path=self.workdir / f"{self.scenario.name}-{name}.log",
        )
        server.start()
        self.servers[name] = server
        self.targets[name] = port

    def start(self, names: list[str], cert: Path | None, key: Path | None) -> None:
        for name in names:
            self._launch(name, cert, key)
        for name in names:
            problem = self.servers[name].wait_listening(timeout=60)
            if problem is not None:
                status = "n/a" if self.servers[name].exited() == UNAVAILABLE else "failed"
                self.drop(name, status, f"did not start: {problem}")
        if self.scenario.protocol == "uwsgi" and self.servers:
            self._start_nginx()

    def _start_nginx(self) -> None:
        routes = {free_port(): server.port for server in self.servers.values()}
        for (front, _), name in zip(routes.items(), list(self.servers), strict=True):
            self.targets[name] = front
        config = tools.nginx_config(self.workdir, routes)
        nginx = tools.which("nginx") or "nginx"
        self.nginx = ServerProcess(
            name="nginx",
            command=pinned(self.options.client_cpu, [nginx, "-p", str(self.workdir), "-c", str(config)]),
            port=next(iter(routes)),
            cwd=self.workdir,
            env=dict(os.environ),
            log_path=self.workdir / "nginx.log",
        )
        self.nginx.start()
        for front in routes:
            problem = wait_port(front, self.nginx, timeout=30)
            if problem is not None:
                raise RuntimeError(f"nginx did not start: {problem}")

    def drop(self, name: str, status: str, reason: str) -> None:
        self.results[name] = {"status": status, "reason": reason, "rounds": []}
        server = self.servers.pop(name, None)
        if server is not None:
            server.stop()

    def probe(self) -> None:
        for name in list(self.servers):
            problem: str | None = "not probed"
            for _attempt in range(5):
                problem = self._probe_once(self.targets[name])
                if problem is None:
                    break
                time.sleep(0.5)
            if problem is not None:
                log = self.servers[name].log_tail()
                self.drop(name, "n/a", f"probe failed: {problem}" + (f" (server log: {log})" if log else ""))

    def _probe_once(self, port: int) -> str | None:
        if self.scenario.driver == "h2load":
            return probe_h2(port, self.options.client_cpu)
        if self.scenario.driver == "ws":
            return probe_ws(self.prepared.tools_python, port, self.options.client_cpu)
        return probe_http(self.scenario if self.scenario.driver == "wrk" else SCENARIOS["plaintext"], port)

    def load(self, port: int, duration: float) -> Measurement:
        cpu = self.options.client_cpu
        if self.scenario.driver == "h2load":
            return run_h2load(self.scenario, port, duration, cpu, self.workdir / "h2load.log")
        if self.scenario.driver == "ws":
            return run_ws(self.prepared.tools_python, self.scenario, port, duration, cpu)
        return run_wrk(self.scenario, port, duration, cpu)

    def measure_round(self, number: int, name: str) -> None:
        server = self.servers[name]
        result = self.results.setdefault(name, {"status": "ok", "rounds": []})
        if server.exited() is not None:
            self.drop(name, "failed", f"exited during the run: {server.log_tail()}")
            return
        port = self.targets[name]
        try:
            if self.options.warmup > 0:
                self.load(port, self.options.warmup)
            before, client_before = cpu_seconds(server.pid), _reaped_cpu_seconds()
            measured = self.load(port, self.options.duration)
            used, client_used = cpu_seconds(server.pid) - before, _reaped_cpu_seconds() - client_before
        except (RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            result["rounds"].append(_failed_round(number, str(exc), rss_bytes(server.pid)))
            return
        result["rounds"].append(
            {
                "round": number,
                "requests": measured.requests,
                "seconds": measured.seconds,
                "rps": measured.rps,
                "cpu_seconds": used,
                "per_cpu": measured.requests / used if used > 0 else None,
                "client_cpu_seconds": client_used,
                "p99_ms": measured.p99_ms,
                "rss_bytes": rss_bytes(server.pid),
                "errors": measured.errors,
                "detail": measured.detail,
            }
        )

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.servers.values():
            server.stop()


def _reaped_cpu_seconds() -> float:
    """CPU time of this process's finished children: the load tools, which run and exit within a round (the
    servers are reaped only at the end of a scenario). On loopback the kernel charges part of a transfer's TCP work
    to whichever side's softirq runs it, so copy-bound scenarios are read with both sides' CPU."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _failed_round(number: int, reason: str, rss: int) -> dict[str, Any]:
    return {
        "round": number, "requests": 0, "seconds": 0.0, "rps": 0.0, "cpu_seconds": 0.0, "per_cpu": None,
        "p99_ms": None, "rss_bytes": rss, "errors": 1, "detail": reason,
    }  # fmt: skip


def rotation(names: list[str], number: int) -> list[str]:
    if not names:
        return []
    shift = number % len(names)
    return names[shift:] + names[:shift]


def run_scenario(
    options: Options, prepared: Prepared, scenario: Scenario, workdir: Path, tls: tuple[Path, Path] | None
) -> dict[str, Any]:
    run = ScenarioRun(options, prepared, scenario, workdir)
    capable = []
    for name in options.servers:
        if name in prepared.unavailable:
            run.results[name] = {"status": "n/a", "reason": prepared.unavailable[name], "rounds": []}
        elif scenario.name not in SERVERS[name].scenarios:
            run.results[name] = {
                "status": "n/a",
                "reason": _LACKS.get(scenario.protocol, "unsupported"),
                "rounds": [],
            }
        else:
            capable.append(name)
    cert, key = tls if tls is not None else (None, None)
    print(f"== {scenario.name}: {', '.join(capable)}", file=sys.stderr)
    try:
        try:
            run.start(capable, cert, key)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # nginx, say: nothing can be measured
            for name in list(run.servers):
                run.drop(name, "failed", f"scenario could not start: {exc}")
        run.probe()
        for number in range(options.rounds):
            for name in rotation([n for n in capable if n in run.servers], number):
                if name in run.servers:
                    run.measure_round(number + 1, name)
                    rounds = run.results[name]["rounds"]
                    if rounds:
                        last = rounds[-1]
                        print(
                            f"   round {number + 1} {name}: {last['rps']:,.0f} req/s, "
                            f"{last['per_cpu'] or 0:,.0f} req/CPU-s {last['detail']}",
                            file=sys.stderr,
                        )
    finally:
        run.stop()
    section: dict[str, Any] = {
        "title": scenario.title,
        "load": scenario.load_line(),
        "results": {name: run.results[name] for name in options.servers if name in run.results},
    }
    report.summarize(section)
    return section


def run_memory(options: Options, prepared: Prepared, workdir: Path) -> dict[str, Any]:
    scenario = SCENARIOS["memory"]
    results: dict[str, dict[str, Any]] = {}
    for name in options.servers:
        if name in prepared.unavailable:
            results[name] = {"status": "n/a", "reason": prepared.unavailable[name]}
            continue
        run = ScenarioRun(options, prepared, scenario, workdir)
        print(f"== memory: {name}", file=sys.stderr)
        try:
            run.start([name], None, None)
            run.probe()
            if name not in run.servers:
                results[name] = run.results[name]
                continue
            try:
                figures = memory.measure(
                    run.servers[name], prepared.tools_python, options.client_cpu, options.memory
                )
            except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
                results[name] = {"status": "failed", "reason": str(exc)}
                continue
            results[name] = {"status": "ok", "memory": figures}
            print(
                f"   {name}: {figures['start'] / 2**20:.1f} -> {figures['after_churn'] / 2**20:.1f} MiB after "
                f"{figures['churned']} connections, {figures['with_idle'] / 2**20:.1f} MiB with "
                f"{figures['held']} idle",
                file=sys.stderr,
            )
        finally:
            run.stop()
    settings = options.memory
    return {
        "title": scenario.title,
        "load": scenario.load_line(),
        "settings": {"connections": settings.connections, "idle": settings.idle, "warm": settings.warm},
        "results": results,
    }


def scenario_set(options: Options) -> str:
    chosen = [name for name in SCENARIOS if name in options.scenarios]
    name = "all" if chosen == list(SCENARIOS) else "+".join(chosen)
    return f"smoke-{name}" if options.smoke else name


def required_tools(options: Options) -> list[str]:
    needed = {"taskset"} if options.server_cpu is not None or options.client_cpu is not None else set()
    drivers = {SCENARIOS[name].driver for name in options.scenarios}
    protocols = {SCENARIOS[name].protocol for name in options.scenarios}
    if "wrk" in drivers:
        needed.add("wrk")
    if "h2load" in drivers:
        needed |= {"h2load", "openssl"}
    if "uwsgi" in protocols:
        needed.add("nginx")
    return sorted(needed)


def execute(options: Options) -> tuple[dict[str, Any], Path, Path]:
    needed = required_tools(options)
    tools.ensure_tools(needed)
    prepared = prepare(options)
    data: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).date().isoformat(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "scenario_set": scenario_set(options),
        "command": options.command,
        "machine": tools.machine_line(),
        "tools": tools.tool_versions(needed),
        "settings": {
            "rounds": options.rounds,
            "duration": options.duration,
            "warmup": options.warmup,
            "smoke": options.smoke,
            "server_cpu": options.server_cpu,
            "client_cpu": options.client_cpu,
        },
        "ours_mode": prepared.ours_mode,
        "servers_order": options.servers,
        "servers": prepared.info,
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as temp:
        workdir = Path(temp)
        needs_tls = any(SCENARIOS[name].protocol == "h2" for name in options.scenarios)
        tls = tools.make_certificate(workdir) if needs_tls else None
        for name in SCENARIOS:
            if name not in options.scenarios:
                continue
            if name == "memory":
                data["memory"] = run_memory(options, prepared, workdir)
            else:
                data["scenarios"][name] = run_scenario(options, prepared, SCENARIOS[name], workdir, tls)
    data["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    md_path, json_path = report.write(data, options.results_dir)
    if options.update_readme:
        with contextlib.suppress(OSError):
            report.update_readme(BENCH / "README.md", data, md_path)
    return data, md_path, json_path
