"""The real LLM chain (llama-server behind LiteLLM 1.82.6), started once per test session for every real_llm test.

Needs ``python -m tests.realstack.llm --prepare-only`` first (build + downloads, install time only); its tests are
skipped when that was not done, unless ``LME_REAL_LLM_REQUIRED=1``, which turns the skip into a failure (for CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.celery_procs import wait_for
from tests.fakes import tls
from tests.fakes.process import ROOT, RunningServer, start_server
from tests.integration.conftest import space  # noqa: F401  (fixture, found by pytest through this name)

MODULE = "tests.realstack.llm"
CHAIN_KEY = "sk-lme-enrich-real-chain-test"
CHAIN_MODEL = "lfm2.5-1.2b-instruct"  # LME's alias, routed by LiteLLM to our llama-server
# A prepared chain starts in ~10-20 s (LiteLLM's imports dominate); leave room for a loaded CI machine.
START_TIMEOUT = 240.0
# On a machine shared with other heavy work the model can be tens of times slower than on 2 free cores
# (llama.cpp's threads wait on each other): LME_REAL_LLM_SLOWNESS=N multiplies the tests' model deadlines and
# timeouts, LME_REAL_LLM_THREADS=1 runs llama-server on one thread, which suffers far less from it.
SLOWNESS = float(os.environ.get("LME_REAL_LLM_SLOWNESS") or 1)
THREADS = os.environ.get("LME_REAL_LLM_THREADS")


def slow(seconds: float) -> float:
    """A model deadline or timeout, scaled by LME_REAL_LLM_SLOWNESS."""
    return seconds * SLOWNESS


@dataclass
class RealChain:
    """The running chain: its URL, its run directory (logs, ``chain.json``) and controls over llama-server."""

    server: RunningServer
    run_dir: Path
    ca: Path

    @property
    def url(self) -> str:
        return self.server.url

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.run_dir / "chain.json").read_text())
        return data

    def completions_started(self) -> int:
        """How many completions llama-server has begun (its log, across restarts)."""
        log = self.run_dir / "llama-server.log"
        return log.read_text(errors="replace").count("launch_slot_") if log.exists() else 0

    def client(self, **options: Any) -> httpx.Client:
        headers = options.pop("headers", {"Authorization": f"Bearer {CHAIN_KEY}"})
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca)),
                            timeout=options.pop("timeout", 120), trust_env=False, headers=headers, **options)

    def stop_backend(self, timeout: float = 30) -> None:
        """llama-server stops, LiteLLM stays up (the launcher's SIGUSR1 control)."""
        self.server.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.state()["backend"] == "down", timeout=timeout, interval=0.1, what="llama-server to stop")

    def start_backend(self, timeout: float = 120) -> None:
        """llama-server starts again on its port (SIGUSR2); returns once it answers its /health."""
        self.server.process.send_signal(signal.SIGUSR2)
        wait_for(lambda: self.state()["backend"] == "up", timeout=timeout, interval=0.1, what="llama-server to start")

    @contextlib.contextmanager
    def backend_down(self) -> Iterator[None]:
        self.stop_backend()
        try:
            yield
        finally:
            self.start_backend()

    @contextlib.contextmanager
    def backend_frozen(self) -> Iterator[None]:
        """llama-server stopped with SIGSTOP: requests reach it and get no answer, as from a model far too slow."""
        pid = int(self.state()["llama_pid"])
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


def require_prepared_chain() -> None:
    """Skip when the chain was not prepared (fail instead under LME_REAL_LLM_REQUIRED=1, as in CI)."""
    check = subprocess.run([sys.executable, "-m", MODULE, "--check-prepared"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        message = check.stderr.strip() or "the real LLM chain is not prepared"
        if os.environ.get("LME_REAL_LLM_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def chain(test_ca: tls.TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealChain]:
    require_prepared_chain()
    cert_dir = tmp_path_factory.mktemp("llm-chain-certs")
    run_dir = tmp_path_factory.mktemp("llm-chain-run")
    shutil.copy(test_ca.cert_path, cert_dir / "ca.crt")
    test_ca.issue(cert_dir, "litellm", ("localhost", "127.0.0.1"))
    threads = ["--threads", THREADS] if THREADS else []
    server = start_server(MODULE, ["--api-key", CHAIN_KEY, "--cert-dir", str(cert_dir), "--no-prepare",
                                   "--log-dir", str(run_dir), *threads], timeout=START_TIMEOUT)
    yield RealChain(server, run_dir, test_ca.cert_path)
    assert server.stop(timeout=20) == 0
