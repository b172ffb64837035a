"""What every benchmark needs: the test servers, a Kibana space, Redis, and the real lme-enrich processes.

Everything started here is stopped by :class:`Stack`'s exit (also on Ctrl-C or SIGTERM, see
:func:`stop_on_sigterm`), and every wait has a deadline. Servers follow the project's process contract
(first stdout line ``listening on URL``); unlike ``tests.fakes.process.start_server`` their logs go to a
file, so a benchmark's own output stays readable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
import redis
from elasticsearch import Elasticsearch

from bench import procinfo
from tests import kibana
from tests.celery_procs import wait_for as poll_until
from tests.fakes.llm.server import SimConfig
from tests.fakes.tls import TestCA
from tests.realstack import elasticsearch as es_node

ROOT = Path(__file__).resolve().parents[1]
LLM_KEY = "sk-bench-key"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
T = TypeVar("T")


class BenchError(RuntimeError):
    """A benchmark could not run (a server did not start, a wait ran out)."""


def wait_for(check: Callable[[], T], *, timeout: float, interval: float = 0.25, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; raise :class:`BenchError` after ``timeout`` s."""
    return poll_until(check, timeout=timeout, interval=interval, what=what, error=BenchError)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so the same clean-up runs as for Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def iso_to_epoch(value: Any) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- processes ---------------------------------------------------------------------------------------

@dataclass
class Child:
    """A child process in its own session (Ctrl-C reaches us, and we stop it), logging to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Its own session: the group holds exactly it and its pool processes. A pool process can outlive its
        # main process by a moment (or for good, if the main process was killed): end the whole group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise :class:`KeyboardInterrupt` if one came.

    A child process exists from inside ``Popen()``; an interrupt raised before the caller has recorded it
    would leave it running with nobody to stop it. Handlers set here do not reach the child: ``exec`` resets
    them. Outside the main thread (where signals cannot be handled) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise KeyboardInterrupt


def _launch(name: str, cmd: list[str], log: Path, *, pipe_stdout: bool, env: Mapping[str, str],
            into: list[Child] | None) -> Child:
    """``Popen`` in a session of its own, appended to ``into`` before an interrupt can act.

    Its output goes to ``log``; with ``pipe_stdout`` only its stderr does, and stdout is a pipe to read.
    """
    handle = log.open("wb")
    try:
        with interrupts_held():
            popen = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE if pipe_stdout else handle,
                                     stderr=handle if pipe_stdout else subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, start_new_session=True)
            child = Child(name, popen, log)
            if into is not None:
                into.append(child)
    finally:
        handle.close()
    return child


def spawn(name: str, args: list[str], log: Path, env: Mapping[str, str] | None = None, *,
          into: list[Child]) -> Child:
    """``python *args`` logging to ``log``; recorded in ``into`` (whoever stops it) even on Ctrl-C."""
    return _launch(name, [sys.executable, *args], log, pipe_stdout=False, env=env or {}, into=into)


def start_server(name: str, module: str, args: list[str], workdir: Path, timeout: float = 30.0, *,
                 into: list[Child] | None = None) -> tuple[Child, str]:
    """``python -m module --host 127.0.0.1 --port 0 *args``; returns once it printed its URL.

    Stopped here if it fails to start or an interrupt lands while it starts; once started, recorded in
    ``into`` when given (the caller stops it).
    """
    log = workdir / f"{name}.log"
    child: Child | None = None
    try:
        child = _launch(name, [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *args], log,
                        pipe_stdout=True, env={}, into=into)
        return child, _read_url(child, module, timeout)
    except BaseException:
        if child is not None:
            child.stop()
        raise


def _read_url(child: Child, module: str, timeout: float) -> str:
    stdout = child.popen.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{module} printed no 'listening on URL' line within {timeout:.0f}s")
            if not sel.select(remaining):
                continue
            line = stdout.readline().decode()
            if not line:
                raise BenchError(f"{module} exited before it was ready; see {child.log}")
            if line.startswith("listening on "):
                stdout.close()  # nothing more is printed there
                return line.removeprefix("listening on ").strip()


# -- the simulator's rates -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rates:
    """The simulated model's speed: LME-like CPU rates times ``scale`` (same ratios), or instant."""

    slots: int = 1
    scale: float = 1.0
    instant: bool = False

    @property
    def pp_rate(self) -> float:
        return SimConfig().pp_rate * self.scale

    @property
    def tg_rate(self) -> float:
        return SimConfig().tg_rate * self.scale

    @property
    def overhead_ms(self) -> float:
        return SimConfig().overhead * 1000 / self.scale

    def flags(self) -> list[str]:
        if self.instant:
            return ["--slots", str(self.slots), "--instant"]
        return ["--slots", str(self.slots), "--pp-rate", f"{self.pp_rate:g}", "--tg-rate", f"{self.tg_rate:g}",
                "--overhead-ms", f"{self.overhead_ms:g}"]

    def describe(self) -> dict[str, Any]:
        if self.instant:
            return {"slots": self.slots, "instant": True}
        return {"slots": self.slots, "scale": self.scale, "pp_rate": self.pp_rate, "tg_rate": self.tg_rate,
                "overhead_ms": round(self.overhead_ms, 3)}


# -- the stack -------------------------------------------------------------------------------------------

@dataclass
class Pipeline:
    """lme-enrich's three processes, as ``lme-enrich run`` starts them."""

    poll: Child
    assess: Child
    beat: Child

    def children(self) -> list[Child]:
        return [self.beat, self.poll, self.assess]

    def roots(self) -> dict[str, int]:
        return {c.name: c.pid for c in self.children() if c.popen.poll() is None}

    def cpu(self) -> dict[str, float]:
        kids = procinfo.children_map()
        return {c.name: procinfo.cpu_seconds(c.pid, kids) for c in self.children()}

    def check_alive(self) -> None:
        for child in self.children():
            if child.popen.poll() is not None:
                raise BenchError(f"{child.name} exited with {child.popen.returncode}; see {child.log}")


@dataclass
class Stack:
    """Elasticsearch (the real 8.18.8 node, or our test server), LLM simulator (HTTPS, LME's kind of
    certificate), Redis DB, and pipelines on them."""

    rates: Rates
    workdir: Path
    es_mode: str = "real"
    llm_mode: str = "sim"  # "real": the real chain of tests.realstack.llm instead of the simulator (bench.realllm)
    llm_niceness: int | None = None  # real chain only: its processes' niceness (bench.realllm.start)
    real_llm: Any = None  # the started bench.realllm.RealChain
    real_llm_offset: int = 0  # where sim_clear() left llama-server's log
    redis_url: str = field(default_factory=lambda: os.environ.get("LME_ENRICH_REDIS_URL", DEFAULT_REDIS))
    es_url: str = ""
    llm_url: str = ""
    ca_path: Path = Path()
    servers: dict[str, Child] = field(default_factory=dict)
    pipelines: list[Pipeline] = field(default_factory=list)
    # Every process as soon as it exists (see interrupts_held): a Ctrl-C at any point must stop them all.
    started: list[Child] = field(default_factory=list)
    spaces: list[kibana.Space] = field(default_factory=list)
    es: Elasticsearch | None = None
    sim: httpx.Client | None = None

    def start(self) -> Stack:
        ca = TestCA.create(self.workdir / "ca")
        cert = ca.issue(self.workdir / "llm-cert", "lme-litellm", ("localhost", "127.0.0.1"))
        self.ca_path = ca.cert_path
        es_child, self.es_url = start_elasticsearch(self.es_mode, self.workdir, into=self.started)
        self.servers["elasticsearch"] = es_child
        if self.llm_mode == "real":
            from bench import realllm  # noqa: PLC0415 - realllm builds on this module

            self.real_llm = realllm.start(self.workdir, LLM_KEY, parallel=self.rates.slots,
                                          niceness=self.llm_niceness, into=self.started)
            llm_child, self.llm_url, self.ca_path = self.real_llm.child, self.real_llm.url, self.real_llm.ca
        else:
            llm_child, self.llm_url = start_server(
                "llm", "tests.fakes.llm",
                ["--api-key", LLM_KEY, "--tls-cert", str(cert.cert), "--tls-key", str(cert.key),
                 *self.rates.flags()],
                self.workdir, into=self.started)
        self.servers["llm"] = llm_child
        self.es = Elasticsearch(self.es_url, request_timeout=120)
        self.sim = httpx.Client(base_url=self.llm_url, timeout=60,
                                verify=ssl.create_default_context(cafile=str(self.ca_path)))
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.ping()
            client.flushdb()  # our own DB: leftovers of an earlier run would be served first
        except redis.ConnectionError as exc:
            raise BenchError(f"no Redis answers at {self.redis_url} ({exc}); start redis-server "
                             "or set LME_ENRICH_REDIS_URL") from exc
        finally:
            client.close()
        return self

    def stop(self) -> None:
        servers = [id(child) for child in self.servers.values()]
        # The workers first (they write to the servers), then the Kibana spaces, then the servers.
        for child in reversed(self.started):
            if id(child) not in servers:
                child.stop()
        if self.es is not None:
            for space in self.spaces:
                # The server may be gone already (and stopping it drops all data anyway).
                with contextlib.suppress(Exception):
                    kibana.uninstall(self.es, space)
            self.es.close()
        if self.sim is not None:
            self.sim.close()
        for child in reversed(self.started):
            child.stop()

    @property
    def client(self) -> Elasticsearch:
        assert self.es is not None
        return self.es

    @property
    def llm(self) -> httpx.Client:
        assert self.sim is not None
        return self.sim

    def space(self, prefix: str) -> kibana.Space:
        space = kibana.Space(prefix + uuid.uuid4().hex[:8])
        kibana.install(self.client, space)
        self.spaces.append(space)
        return space

    def cpu(self) -> dict[str, float]:
        kids = procinfo.children_map()
        return {name: procinfo.cpu_seconds(c.pid, kids) for name, c in self.servers.items()}

    def llm_client(self) -> httpx.Client:
        """A client of the simulator with the proxy key, as a script using LiteLLM's API would have."""
        return httpx.Client(base_url=self.llm_url, timeout=httpx.Timeout(6000, connect=10),
                            headers={"Authorization": f"Bearer {LLM_KEY}"},
                            verify=ssl.create_default_context(cafile=str(self.ca_path)))

    # -- the simulator's own accounting ------------------------------------------------------------------
    # (with the real chain: llama-server's own timings, read from its log by bench.realllm)
    def sim_stats(self) -> dict[str, Any]:
        if self.real_llm is not None:
            from bench import realllm  # noqa: PLC0415

            return {"cpu_busy_seconds": realllm.busy_seconds(self.real_llm)}
        data: dict[str, Any] = self.llm.get("/_sim/stats").json()
        return data

    def sim_clear(self) -> None:
        if self.real_llm is not None:
            from bench import realllm  # noqa: PLC0415

            self.real_llm_offset = realllm.log_size(self.real_llm)
            return
        self.llm.delete("/_sim/requests").raise_for_status()

    def chat_requests(self) -> list[dict[str, Any]]:
        if self.real_llm is not None:
            from bench import realllm  # noqa: PLC0415

            return realllm.requests_since(self.real_llm, self.real_llm_offset)
        records = self.llm.get("/_sim/requests").json()["requests"]
        return [r for r in records if "chat/completions" in str(r.get("path", ""))]

    # -- lme-enrich ----------------------------------------------------------------------------------------
    def pipeline_env(self, space: kibana.Space, **overrides: str) -> dict[str, str]:
        env = {
            "LME_ENRICH_ES_URL": self.es_url,
            "LME_ENRICH_ES_USERNAME": "elastic",
            "LME_ENRICH_ES_PASSWORD": "unused-by-the-test-server",
            "LME_ENRICH_LLM_URL": self.llm_url,
            "LME_ENRICH_LLM_API_KEY": LLM_KEY,
            "LME_ENRICH_LLM_CA_CERT": str(self.ca_path),
            "LME_ENRICH_REDIS_URL": self.redis_url,
            "LME_ENRICH_ALERT_INDEX": space.pattern,
            "LME_ENRICH_CONCURRENCY": str(self.rates.slots),
            "LME_ENRICH_STATE_DIR": str(self.workdir / f"state-{space.space}"),
        }
        env.update(overrides)
        return env

    def start_pipeline(self, env: Mapping[str, str], timeout: float = 90.0) -> Pipeline:
        """``lme-enrich check``, then beat, a poll worker and the assess workers; returns once all are up."""
        logs = self.workdir / f"logs-{len(self.pipelines)}"
        logs.mkdir(parents=True, exist_ok=True)
        check = subprocess.run([sys.executable, "-m", "worker.admin.cli", "check"], cwd=ROOT, capture_output=True,
                               text=True, timeout=timeout, env={**os.environ, **env}, check=False)
        if check.returncode != 0:
            raise BenchError(f"lme-enrich check failed: {check.stderr.strip()[-800:]}")
        base = ["-m", "worker.admin.cli"]

        def start(name: str, args: list[str]) -> Child:
            return spawn(name, [*base, *args], logs / f"{name}.log", env, into=self.started)

        pipeline = Pipeline(poll=start("poll", ["worker", "--role", "poll", "--skip-checks"]),
                            assess=start("assess", ["worker", "--role", "assess", "--skip-checks"]),
                            beat=start("beat", ["beat"]))
        self.pipelines.append(pipeline)

        def up() -> bool:
            pipeline.check_alive()
            return " ready." in pipeline.poll.log_text() and " ready." in pipeline.assess.log_text()

        wait_for(up, timeout=timeout, what="the poll and assess workers to be ready")
        return pipeline

    def stop_pipeline(self, pipeline: Pipeline) -> None:
        for child in pipeline.children():
            child.stop()


ES_MODES = ("real", "server")
REAL_NODE_START_S = 180.0


def add_es_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--es", choices=ES_MODES, default="real",
                   help="Elasticsearch to run on: the real 8.18.8 node built from Maven Central (default; "
                        "Java 17+ and Maven) or our test server")


def start_elasticsearch(mode: str, workdir: Path, *, into: list[Child] | None = None) -> tuple[Child, str]:
    if mode == "server":
        return start_server("elasticsearch", "tests.fakes.elasticsearch", [], workdir, into=into)
    if mode != "real":
        raise BenchError(f"--es must be one of {ES_MODES}, not {mode!r}")
    try:
        es_node.verify_pins(es_node.ensure_dist())  # the Maven build (first run only) is not start-up time
    except es_node.NodeError as exc:
        raise BenchError(f"the real Elasticsearch node: {exc}") from exc
    return start_server("elasticsearch", "tests.realstack.elasticsearch",
                        ["--start-timeout", str(REAL_NODE_START_S)], workdir, timeout=REAL_NODE_START_S + 10,
                        into=into)


@contextmanager
def stack(rates: Rates, keep: Path | None = None, es_mode: str = "real", *, llm_mode: str = "sim",
          llm_niceness: int | None = None) -> Iterator[Stack]:
    """A started :class:`Stack` in a fresh work directory (kept at ``keep`` when given), always stopped."""
    with ExitStack() as cleanup:
        if keep is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="lme-bench-")))
        else:
            keep.mkdir(parents=True, exist_ok=True)
            workdir = keep
        running = Stack(rates, workdir, es_mode, llm_mode=llm_mode, llm_niceness=llm_niceness)
        cleanup.callback(running.stop)
        running.start()
        yield running
