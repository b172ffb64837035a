"""Start llama-server, then a LiteLLM proxy in front of it over HTTPS, and keep both up until SIGTERM.

Controls for tests (signals to the launcher): SIGUSR1 stops llama-server and leaves the proxy up (the model
server is down behind a live LiteLLM); SIGUSR2 starts it again on the same port. ``chain.json`` in the run
directory says which: ``backend`` is ``up`` or ``down``, with both servers' pids.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.tls import ServerCert, TestCA
from tests.realstack.llm import litellm_env
from tests.realstack.llm.pins import log

SERVER_CERT_NAME = "litellm"
PR_SET_PDEATHSIG = 1


class ChainError(RuntimeError):
    pass


@dataclass(frozen=True)
class ChainOptions:
    host: str
    port: int
    api_key: str
    cert_dir: Path
    binary: Path
    gguf: Path
    litellm: Path
    threads: int = 2
    parallel: int = 2
    ctx_per_slot: int = 4096
    llama_port: int = 0
    log_dir: Path | None = None
    verbose: bool = False
    start_timeout: float = 240.0


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _load_ca(cert_dir: Path) -> TestCA:
    cert = x509.load_pem_x509_certificate((cert_dir / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((cert_dir / "ca.key").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ChainError(f"{cert_dir / 'ca.key'} is not an EC key")
    return TestCA(cert_dir / "ca.crt", key, cert)


def server_certificate(cert_dir: Path, run_dir: Path, host: str) -> ServerCert:
    """The proxy's certificate, signed by ``cert_dir/ca.crt``.

    - ``cert_dir`` holds ``litellm.crt``/``litellm.key``: use them (the caller issued them with its CA);
    - it holds ``ca.crt`` and ``ca.key``: issue a certificate for ``host``, localhost and 127.0.0.1;
    - it holds no ``ca.crt``: create a CA there (``ca.crt``, and ``ca.key`` for later runs), then issue.
    """
    given = ServerCert(cert_dir / f"{SERVER_CERT_NAME}.crt", cert_dir / f"{SERVER_CERT_NAME}.key")
    if given.cert.exists() and given.key.exists():
        return given
    ca_crt, ca_key = cert_dir / "ca.crt", cert_dir / "ca.key"
    if ca_crt.exists():
        if not ca_key.exists():
            raise ChainError(f"{cert_dir} has ca.crt but neither ca.key nor {given.cert.name}/{given.key.name}: "
                             "cannot make a certificate signed by that CA")
        ca = _load_ca(cert_dir)
    else:
        ca = TestCA.create(cert_dir)
        ca_key.write_bytes(ca._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        ca_key.chmod(0o600)
        log(f"created a CA in {cert_dir}")
    hosts = tuple(dict.fromkeys((host, "localhost", "127.0.0.1")))
    return ca.issue(run_dir, SERVER_CERT_NAME, hosts)


class Chain:
    """The two processes. ``start`` returns once a completion through the proxy succeeded."""

    def __init__(self, opts: ChainOptions, stop: threading.Event | None = None) -> None:
        self.opts = opts
        self.stopping = stop or threading.Event()
        self._own_run_dir = opts.log_dir is None
        self.run_dir = opts.log_dir or Path(tempfile.mkdtemp(prefix="lme-llm-chain-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.llama: subprocess.Popen[bytes] | None = None
        self.proxy: subprocess.Popen[bytes] | None = None
        self.llama_url = ""
        self.url = ""
        self.timings: dict[str, float] = {}
        self.backend_down = False  # llama-server stopped on purpose (SIGUSR1), the proxy left up
        self._logs: list[IO[bytes]] = []

    # -- processes -------------------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log(f"{name}: $ " + " ".join(cmd))
        if self.opts.verbose:
            out: int | IO[bytes] = sys.stderr.fileno()
        else:
            out = (self.run_dir / f"{name}.log").open("ab")
            self._logs.append(out)
        # Never our stdout: the test harness stops reading it after the ready line, and a full pipe blocks.
        # preexec_fn is safe here: this process runs no other thread.
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=die_with_parent, cwd=self.run_dir)  # noqa: PLW1509

    def _wait_until(self, what: str, proc: subprocess.Popen[bytes], deadline: float,
                    probe: Callable[[], bool]) -> None:
        while True:
            if self.stopping.is_set():
                raise ChainError(f"stopped by a signal while waiting for {what}")
            if proc.poll() is not None:
                raise ChainError(f"{what} exited with {proc.returncode} before it was ready")
            if probe():
                return
            if time.monotonic() > deadline:
                raise ChainError(f"{what} was not ready within {self.opts.start_timeout:.0f} s")
            self.stopping.wait(0.2)  # the poll interval of a deadline-bounded wait; a stop signal ends it at once

    def start(self) -> str:
        o = self.opts
        deadline = time.monotonic() + o.start_timeout
        llama_port = o.llama_port or free_port()
        self.llama_url = f"http://127.0.0.1:{llama_port}"
        cert = server_certificate(o.cert_dir, self.run_dir, o.host)
        ca_file = o.cert_dir / "ca.crt"

        t0 = time.monotonic()
        self.llama = self._spawn("llama-server", [
            str(o.binary), "--model", str(o.gguf), "--alias", o.gguf.stem,
            "--host", "127.0.0.1", "--port", str(llama_port),
            "--threads", str(o.threads), "--parallel", str(o.parallel), "--ctx-size", str(o.ctx_per_slot * o.parallel),
            "--no-webui",
        ])

        def llama_healthy() -> bool:
            try:
                return httpx.get(f"{self.llama_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait_until("llama-server", self.llama, deadline, llama_healthy)
        self.timings["llama_ready_s"] = time.monotonic() - t0
        log(f"llama-server ready on {self.llama_url} after {self.timings['llama_ready_s']:.2f} s")

        port = o.port or free_port(o.host)
        config = self.run_dir / "litellm_config.yaml"
        config.write_text(litellm_env.config_yaml(llama_url=f"{self.llama_url}", upstream_model=o.gguf.stem,
                                                  master_key=o.api_key))
        t1 = time.monotonic()
        self.proxy = self._spawn("litellm", [
            str(o.litellm), "--config", str(config), "--host", o.host, "--port", str(port), "--num_workers", "1",
            "--ssl_keyfile_path", str(cert.key), "--ssl_certfile_path", str(cert.cert), "--telemetry", "False",
        ], env=litellm_env.proxy_env())
        self.url = f"https://{o.host}:{port}"
        client = httpx.Client(verify=ssl.create_default_context(cafile=ca_file), timeout=30, trust_env=False)
        body = {"model": litellm_env.LME_MODEL_ALIAS, "max_tokens": 1,
                "messages": [{"role": "user", "content": "Say OK."}]}

        def completion_ok() -> bool:
            try:
                r = client.post(f"{self.url}/v1/chat/completions", json=body,
                                headers={"Authorization": f"Bearer {o.api_key}"})
            except httpx.TransportError:
                return False
            if r.status_code != 200:
                raise ChainError(f"the first completion through the proxy answered {r.status_code}: {r.text[:500]}")
            return True

        with client:
            self._wait_until("litellm", self.proxy, deadline, completion_ok)
        self.timings["proxy_ready_s"] = time.monotonic() - t1
        log(f"litellm ready on {self.url} after {self.timings['proxy_ready_s']:.2f} s "
            f"(logs and config in {self.run_dir})")
        self.write_state()
        return self.url

    def write_state(self) -> None:
        """``chain.json``: where the servers are, their pids, whether llama-server is up; replaced atomically."""
        state = {"url": self.url, "llama_url": self.llama_url, "ca": str(self.opts.cert_dir / "ca.crt"),
                 "pid": os.getpid(), "llama_pid": self.llama.pid if self.llama else None,
                 "proxy_pid": self.proxy.pid if self.proxy else None,
                 "backend": "down" if self.backend_down else "up", **self.timings}
        tmp = self.run_dir / "chain.json.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.run_dir / "chain.json")

    def _llama_healthy(self) -> bool:
        try:
            return httpx.get(f"{self.llama_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_backend(self) -> None:
        """Stop llama-server, leave LiteLLM up: what a client meets when LME's model server is down."""
        if self.llama is not None and self.llama.poll() is None:
            self.llama.terminate()
            try:
                self.llama.wait(10)
            except subprocess.TimeoutExpired:
                self.llama.kill()
                self.llama.wait()
        self.backend_down = True
        log("llama-server stopped on request; the proxy stays up")
        self.write_state()

    def start_backend(self) -> None:
        """Start llama-server again, same command and port, after :meth:`stop_backend`."""
        if self.llama is None or not self.backend_down:
            return
        command = self.llama.args  # what start() ran: a list
        assert isinstance(command, list)
        self.llama = self._spawn("llama-server", [str(arg) for arg in command])
        self._wait_until("llama-server", self.llama, time.monotonic() + self.opts.start_timeout,
                         self._llama_healthy)
        self.backend_down = False
        log("llama-server started again on request")
        self.write_state()

    def dead(self) -> str | None:
        for name, proc in (("llama-server", self.llama), ("litellm", self.proxy)):
            if name == "llama-server" and self.backend_down:
                continue
            if proc is not None and proc.poll() is not None:
                return f"{name} exited with {proc.returncode}"
        return None

    def stop(self, grace: float = 8.0) -> None:
        procs = [p for p in (self.proxy, self.llama) if p is not None and p.poll() is None]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        end = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self._logs:
            f.close()
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for name in ("llama-server", "litellm"):
            path = self.run_dir / f"{name}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- last lines of {name}.log ---\n" + "\n".join(tail))
        return "\n".join(out)


def serve(opts: ChainOptions) -> int:
    """Run the chain until SIGTERM/SIGINT or the parent's death; 0 on a clean stop."""
    parent = os.getppid()
    die_with_parent()
    stop = threading.Event()
    backend_requests: list[int] = []  # SIGUSR1 (stop llama-server) / SIGUSR2 (start it), in order

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_backend_signal(signum: int, frame: FrameType | None) -> None:
        backend_requests.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_backend_signal)
    signal.signal(signal.SIGUSR2, on_backend_signal)
    chain = Chain(opts, stop)
    try:
        try:
            url = chain.start()
        except (ChainError, OSError, httpx.HTTPError) as exc:
            log(f"could not start: {exc}")
            if not opts.verbose:
                print(chain.log_tails(), file=sys.stderr, flush=True)
            return 1
        print(f"listening on {url}", flush=True)
        while not stop.wait(0.2):
            while backend_requests:
                try:
                    if backend_requests.pop(0) == signal.SIGUSR1:
                        chain.stop_backend()
                    else:
                        chain.start_backend()
                except (ChainError, OSError) as exc:
                    log(f"llama-server control failed: {exc}")
                    return 1
            if reason := chain.dead():
                log(reason + ": stopping")
                if not opts.verbose:
                    print(chain.log_tails(), file=sys.stderr, flush=True)
                return 1
            if os.getppid() != parent:
                log("parent died: stopping")
                break
        log("shutting down")
        return 0
    finally:
        chain.stop()
