"""The real LLM chain (llama-server + LiteLLM 1.82.6 over HTTPS, ``tests.realstack.llm``) for the benchmarks.

:func:`start` runs ``python -m tests.realstack.llm --port 0 --no-prepare`` as a child in its own session (so
:meth:`bench.harness.Child.stop` ends it and both servers) and returns once a completion through the proxy
succeeded. Nothing is built or downloaded here: prepare first with ``python -m tests.realstack.llm
--prepare-only``. :func:`requests_since` and :func:`busy_seconds` read llama-server's own timings from its log,
so that a benchmark can report model calls, tokens and busy time the way the simulator's ``/_sim`` routes do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import BenchError, Child, start_server

MODEL_ALIAS = "lfm2.5-1.2b-instruct"


@dataclass
class RealChain:
    child: Child
    url: str  # the LiteLLM proxy (https)
    llama_url: str  # llama-server itself (http, loopback)
    ca: Path
    api_key: str
    run_dir: Path
    parallel: int
    niceness: int | None = None

    def stop(self) -> None:
        self.child.stop()

    def client(self, *, direct: bool = False, timeout: float = 900.0) -> httpx.Client:
        if direct:
            return httpx.Client(base_url=self.llama_url, timeout=timeout, trust_env=False)
        return httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=10), trust_env=False,
                            headers={"Authorization": f"Bearer {self.api_key}"},
                            verify=ssl.create_default_context(cafile=str(self.ca)))

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.url, "parallel": self.parallel, "llama_niceness": self.niceness}
        with_info = self.run_dir / "chain.json"
        if with_info.exists():
            info.update({k: v for k, v in json.loads(with_info.read_text()).items() if k.endswith("_s")})
        build = sorted(Path.home().glob(".cache/lme-enrich/llama-server/*/build-info.json"))
        if build:
            info["llama_build"] = json.loads(build[-1].read_text())
        return info


def start(workdir: Path, api_key: str, *, parallel: int = 1, threads: int = 2, ctx_per_slot: int = 4096,
          timeout: float = 300.0, niceness: int | None = None, into: list[Child] | None = None) -> RealChain:
    """Start the chain with ``parallel`` slots; certificates from a fresh CA in ``workdir/llm-ca``.

    ``niceness``: the scheduling niceness of the chain's processes (inherited from this thread at fork).
    On a machine busy with other work, llama.cpp's threads wait for each other at every step and its speed
    collapses; a negative niceness (root only) gives it the CPU as if it had the machine to itself, which is
    what the model has on an LME host. ``into``: where its process is recorded as soon as it exists (see
    :func:`bench.harness.start_server`).
    """
    certs = workdir / "llm-ca"
    run_dir = workdir / "llm-chain"
    certs.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    old = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)  # this thread only: the child inherits it
        except PermissionError as exc:
            raise BenchError(f"niceness {niceness} needs root ({exc})") from exc
    try:
        child, url = start_server("llm-chain", "tests.realstack.llm", [
            "--api-key", api_key, "--cert-dir", str(certs), "--log-dir", str(run_dir), "--no-prepare",
            "--parallel", str(parallel), "--threads", str(threads), "--ctx-per-slot", str(ctx_per_slot),
            "--start-timeout", str(int(timeout)),
        ], workdir, timeout=timeout + 30, into=into)
    finally:
        if niceness is not None:
            os.setpriority(os.PRIO_PROCESS, 0, old)
    if niceness is not None:
        # The chain runs in a session of its own, and with autogroup scheduling (Linux's default on desktops and
        # many VMs) a session's share of the CPU is set by its autogroup's niceness, not its processes'.
        autogroup = Path(f"/proc/{child.pid}/autogroup")
        with contextlib.suppress(OSError):
            autogroup.write_text(f"{niceness}\n")
    try:
        info = json.loads((run_dir / "chain.json").read_text())
    except (OSError, ValueError) as exc:
        child.stop()
        raise BenchError(f"the LLM chain wrote no readable {run_dir / 'chain.json'}: {exc}") from exc
    return RealChain(child, url, str(info["llama_url"]), Path(info["ca"]), api_key, run_dir, parallel, niceness)


_TIMING = re.compile(r"task (\d+) \|\s+(prompt eval|eval) time =\s+([\d.]+) ms /\s+(\d+) tokens")
_RELEASE = re.compile(r"task (\d+) \| stop processing: n_tokens = (\d+)")


def log_size(chain: RealChain) -> int:
    path = chain.run_dir / "llama-server.log"
    return path.stat().st_size if path.exists() else 0


def requests_since(chain: RealChain, offset: int = 0) -> list[dict[str, Any]]:
    """The completions llama-server finished since byte ``offset`` of its log, like the simulator's records.

    From llama-server's own ``print_timing`` lines: prompt tokens processed and their time, tokens generated and
    their time; at release ``n_tokens`` (cached + processed + generated) gives the prefix read from the cache.
    """
    path = chain.run_dir / "llama-server.log"
    with path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    tasks: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if m := _TIMING.search(line):
            task = tasks.setdefault(m[1], {"path": "/v1/chat/completions"})
            kind = "prompt" if m[2] == "prompt eval" else "completion"
            task[f"{kind}_ms"] = float(m[3])
            task[f"{kind}_n"] = int(m[4])
        elif (m := _RELEASE.search(line)) and m[1] in tasks:
            task = tasks[m[1]]
            processed, generated = int(task.get("prompt_n", 0)), int(task.get("completion_n", 0))
            cached = max(0, int(m[2]) - processed - max(generated - 1, 0))  # the last token is not decoded
            task.update({"prompt_tokens": cached + processed, "cached_tokens": cached,
                         "completion_tokens": generated, "done": True})
    return [t for t in tasks.values() if t.get("done")]


def busy_seconds(chain: RealChain, offset: int = 0) -> float:
    """Prompt plus generation time of every completion since ``offset`` (one slot: the model's busy time)."""
    return float(sum((t.get("prompt_ms", 0.0) + t.get("completion_ms", 0.0)) / 1000
                     for t in requests_since(chain, offset)))
