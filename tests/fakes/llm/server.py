"""HTTP front of the simulator: LiteLLM's routes, auth and error shapes, plus the ``/_sim`` controls.

A thread per connection (``ThreadingHTTPServer``): a request waiting for a slot blocks only its
own thread. HTTP/1.1 keep-alive; streaming uses chunked transfer encoding like LiteLLM.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.llm import chat, errors
from tests.fakes.llm.answers import Answer, expected_answer
from tests.fakes.llm.engine import Engine
from tests.fakes.llm.errors import ProxyError
from tests.fakes.llm.faults import BACKEND_DOWN_DELAY, Faults, FaultSpecError
from tests.fakes.llm.latency import CpuModel, Job
from tests.fakes.llm.records import Record, RequestLog
from tests.fakes.llm.tokens import prompt_tokens, tokenize

log = logging.getLogger("llm-sim")

LITELLM_VERSION = "1.82.6"
HEALTH_CHECK_MESSAGES = [{"role": "user", "content": "test from litellm"}]
# LiteLLM waits this long before each of its own retries (a refused connection or a body timeout), measured
# on 1.82.6: 1 retry adds ~2.2 s, 2 retries ~4.5 s (BACKEND_DOWN_DELAY).
LITELLM_RETRY_WAIT = BACKEND_DOWN_DELAY / 2
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})


@dataclass
class SimConfig:
    api_key: str = "sk-lme-llama-proxy"
    models: list[str] = field(default_factory=lambda: ["lfm2.5-1.2b-instruct"])
    # Calibrated on the real chain (python -m bench.calibrate, BENCHMARKS.md "Calibration"): medians over the
    # product's own prompts, SmolLM2-135M Q4_1 in llama-server, 2 threads, 2-core Xeon. pp_rate is in this
    # simulator's tokens (tests.fakes.llm.tokens) per second of real prompt time; tg_rate includes llama.cpp's
    # grammar-constrained sampling of the JSON schema; overhead is LiteLLM 1.82.6's own time per request.
    pp_rate: float = 171.0
    tg_rate: float = 46.0
    slots: int = 4
    ctx: int = 16384
    n_batch: int = 2048
    overhead: float = 0.027
    instant: bool = False
    seed: int = 0
    access_log: bool = False
    log_limit: int = 20000

    @property
    def n_ctx_slot(self) -> int:
        return self.ctx // self.slots


class Simulator:
    """Shared state of one simulator process."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        inf = float("inf")
        self.engine = Engine(CpuModel(
            config.slots, inf if config.instant else config.pp_rate,
            inf if config.instant else config.tg_rate, config.n_batch,
        ))
        self.faults = Faults(config.seed)
        self.log = RequestLog(config.log_limit)
        self.stopping = threading.Event()
        self._models_lock = threading.Lock()
        self._models = list(config.models)

    @property
    def models(self) -> list[str]:
        with self._models_lock:
            return list(self._models)

    def set_models(self, models: list[str]) -> None:
        with self._models_lock:
            self._models = list(models)

    def pause(self, seconds: float) -> None:
        """Simulated wall time (proxy overhead, LiteLLM retries); cut short at shutdown."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def stop(self) -> None:
        self.stopping.set()
        self.engine.stop()


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sim: Simulator,
                 tls: ssl.SSLContext | None = None) -> None:
        self.sim = sim
        super().__init__(address, Handler)
        if tls is not None:
            # Handshake lazily in the connection's own thread, never in the accept loop.
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ssl.SSLError | ConnectionError | TimeoutError):
            log.info("connection from %s ended: %s", client_address, exc)
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: without TCP_NODELAY, Nagle + delayed ACK add 40 ms.
    disable_nagle_algorithm = True
    server: SimHTTPServer

    # -- plumbing --------------------------------------------------------------------------
    @property
    def sim(self) -> Simulator:
        return self.server.sim

    def log_message(self, format: str, *args: Any) -> None:
        if self.sim.config.access_log:
            log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _read_body(self) -> bytes:
        """The whole request body (any method), so a keep-alive connection stays in step."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: ProxyError) -> None:
        self._send_json(err.status, err.body(), err.headers)

    def _client_gone(self) -> bool:
        """The client closed its end (it only ever sends one request at a time)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        if isinstance(self.connection, ssl.SSLSocket):
            return True  # only a close_notify or EOF can arrive while it waits for our answer
        try:
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True
        return peeked == b""

    def _wait_client_gone(self) -> None:
        while not self.sim.stopping.is_set():
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.5)
            except (OSError, ValueError):
                return
            if readable and self._client_gone():
                return

    def _reset_connection(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0), as a crashing proxy would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _auth(self) -> None:
        header = self.headers.get("Authorization")
        if header is None or not header.strip():
            raise errors.no_api_key()
        if not header.startswith("Bearer "):
            raise errors.malformed_api_key()
        if header[len("Bearer "):].strip() != self.sim.config.api_key:
            raise errors.no_db_connection()

    # -- routing ---------------------------------------------------------------------------
    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        raw = self._read_body()
        if path.startswith("/_sim/"):
            self._control(method, path, raw)
            return
        record = self.sim.log.new(method, path, time.time(), time.monotonic())
        try:
            if method == "GET" and path == "/health/liveliness":
                self._reply(record, 200, "I'm alive!")
            elif method == "GET" and path == "/health/readiness":
                self._reply(record, 200, self._readiness())
            elif method == "GET" and path == "/health":
                self._auth()
                self._reply(record, 200, self._health(record))
            elif method == "GET" and path in MODELS_PATHS:
                self._auth()
                self._reply(record, 200, self._model_list())
            elif method == "POST" and path in CHAT_PATHS:
                self._chat(record, raw)
            else:
                self._reply(record, 404, {"detail": "Not Found"})
        except ProxyError as err:
            record.status = err.status
            self._send_error(err)
        except OSError:
            record.client_hung_up = True
            self.close_connection = True
        finally:
            record.answered_at = time.time()
            record.duration = round(time.monotonic() - record.received_mono, 6)

    def _reply(self, record: Record, status: int, body: Any) -> None:
        record.status = status
        self._send_json(status, body)

    def _readiness(self) -> dict[str, Any]:
        return {
            "status": "healthy",
            "db": "Not connected",
            "cache": None,
            "litellm_version": LITELLM_VERSION,
            "success_callbacks": [],
            "use_aiohttp_transport": True,
            "last_updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def _model_list(self) -> dict[str, Any]:
        created = 1677610602
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "openai"}
            for name in self.sim.models
        ]}

    def _health(self, record: Record) -> dict[str, Any]:
        """LiteLLM's /health: a real 1-token completion per configured model."""
        models = self.sim.models
        healthy: list[dict[str, Any]] = []
        unhealthy: list[dict[str, Any]] = []
        if self.sim.faults.backend_down():
            for name in models:
                unhealthy.append({
                    "model": f"openai/{name}", "api_base": errors.LLAMA_API_BASE,
                    "error": "litellm.APIConnectionError: OpenAIException - Connection error.",
                })
        else:
            prompt = prompt_tokens(HEALTH_CHECK_MESSAGES)
            jobs = [Job(prompt, 1) for _ in models]
            for job in jobs:
                self.sim.engine.submit(job)
            for job in jobs:
                self.sim.engine.wait_finished(job)
            healthy = [{"model": f"openai/{name}", "api_base": errors.LLAMA_API_BASE} for name in models]
            record.prompt_tokens = len(prompt) * len(models)
            record.completion_tokens = len(models)
        return {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}

    # -- chat completions ------------------------------------------------------------------
    def _chat(self, record: Record, raw: bytes) -> None:
        self._auth()
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise errors.bad_request(f"Invalid JSON body: {exc}") from None
        record.body = body
        request = chat.parse_chat(body)
        record.model = request.model
        record.stream = request.stream
        if request.model not in self.sim.models:
            raise errors.invalid_model(request.model)
        rule = self.sim.faults.take(chat.message_text(request.messages))
        kind = rule.kind if rule is not None else None
        record.fault = kind
        config = self.sim.config
        self.sim.pause(0.0 if config.instant else config.overhead)
        if rule is not None and kind == "429":
            raise errors.rate_limited(request.model, rule.retry_after)
        if kind in ("500", "502", "503"):
            raise errors.upstream_status(request.model, int(kind or 0))
        if rule is not None and kind == "backend_down":
            # LiteLLM's own retries of the refused connection take the time (measured: 0.1 s with
            # num_retries 0, as lme-enrich sends; ~2.2 s with 1; ~4.5 s with LiteLLM's default 2).
            retried = LITELLM_RETRY_WAIT * request.num_retries
            self.sim.pause(retried if rule.delay is None else rule.delay)
            raise errors.backend_down(request.model)
        prompt = prompt_tokens(request.messages)
        record.prompt_tokens = len(prompt)
        if len(prompt) > config.n_ctx_slot:
            raise errors.context_exceeded(len(prompt), config.n_ctx_slot, request.model)
        answer = chat.apply_fault(
            expected_answer(body, n_ctx=config.n_ctx_slot, sim_seed=config.seed), kind
        )
        job = self._run(record, request, prompt, answer.completion_tokens, kind)
        record.completion_tokens = answer.completion_tokens
        if kind == "hang":
            self._wait_client_gone()
            self.sim.engine.release(job)
            record.client_hung_up = not self.sim.stopping.is_set()
            self.close_connection = True
            return
        cid, created = chat.completion_id(), int(time.time())
        if request.stream:
            self._stream(record, request.model, cid, created, answer=answer, job=job, kind=kind)
            return
        self.sim.engine.wait_finished(job)
        self._note_job(record, job)
        if not job.finished:  # shutting down mid-answer: drop the connection like a dying proxy
            self._reset_connection()
            return
        record.client_hung_up = self._client_gone()
        body_out = chat.completion_body(cid, created, request.model, answer, job,
                                        empty_choices=kind == "empty_choices")
        record.status = 200
        if kind == "reset":
            data = json.dumps(body_out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self._reset_connection()
            return
        self._send_json(200, body_out)

    def _run(self, record: Record, request: chat.ChatRequest, prompt: tuple[str, ...],
             completion_tokens: int, kind: str | None) -> Job:
        """Submit to the CPU; with a body ``timeout`` LiteLLM cancels and retries each attempt."""
        engine = self.sim.engine
        attempts = 1 if request.timeout is None else 1 + request.num_retries
        started = time.monotonic()
        for attempt in range(attempts):
            if attempt:
                self.sim.pause(LITELLM_RETRY_WAIT)
            started = time.monotonic()  # LiteLLM's message reports the last attempt's time
            job = Job(prompt, completion_tokens, hold=kind == "hang",
                      tg_scale=10.0 if kind == "slow_stream" else 1.0)
            record.attempts += 1
            engine.submit(job)
            if request.timeout is None:
                return job
            deadline = time.monotonic() + request.timeout
            if kind == "hang":
                done = False  # the backend never answers: only the deadline ends the attempt
                self.sim.pause(deadline - time.monotonic())
            elif request.stream:
                # LiteLLM's timeout covers the wait for the first streamed token.
                done = engine.wait_tokens(job, 1, deadline) >= 1 or job.finished
            else:
                done = engine.wait_finished(job, deadline)
            if done:
                return job
            engine.cancel(job)
            self._note_job(record, job)
            record.cancelled = True
        raise errors.request_timeout(request.model, request.timeout or 0.0, time.monotonic() - started)

    @staticmethod
    def _note_job(record: Record, job: Job) -> None:
        record.slot = job.slot
        record.cached_tokens = job.cached_tokens
        if job.started_at is not None:
            record.queued_seconds = round(job.started_at - job.submitted_at, 6)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _sse(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._write_chunk(f"data: {text}\n\n".encode())

    def _stream(self, record: Record, model: str, cid: str, created: int, *,
                answer: Answer, job: Job, kind: str | None) -> None:
        engine = self.sim.engine
        pieces = tokenize(answer.content)
        # llama-server sends nothing before the prompt is processed: headers come with token 1.
        engine.wait_tokens(job, 1)
        self._note_job(record, job)
        if self.sim.stopping.is_set():
            self._reset_connection()
            return
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        reset_at = len(pieces) // 2 if kind == "reset" else None
        sent = 0
        try:
            while sent < len(pieces):
                got = engine.wait_tokens(job, sent + 1)
                if got <= sent and self.sim.stopping.is_set():
                    self._reset_connection()
                    return
                if got <= sent and job.finished:
                    break
                while sent < got:
                    if kind != "empty_choices":
                        self._sse(chat.chunk(cid, created, model, [chat.delta_choice(pieces[sent], sent == 0)]))
                    sent += 1
                    if reset_at is not None and sent >= reset_at:
                        self._reset_connection()
                        return
            final = [] if kind == "empty_choices" else [chat.finish_choice(answer.finish_reason)]
            self._sse(chat.chunk(cid, created, model, final))
            self._sse(chat.chunk(cid, created, model, [], {"usage": chat.usage(answer, job.cached_tokens)}))
            self._sse("[DONE]")
            self._write_chunk(b"")
        except OSError:
            # The client hung up: the job goes on (LiteLLM does not cancel llama-server).
            record.client_hung_up = True
            self.close_connection = True

    # -- /_sim controls --------------------------------------------------------------------
    def _control(self, method: str, path: str, raw: bytes) -> None:
        sim = self.sim
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            self._send_json(400, {"error": "invalid JSON"})
            return
        if path == "/_sim/faults":
            if method == "GET":
                self._send_json(200, sim.faults.describe())
            elif method == "POST":
                try:
                    sim.faults.set(body)
                except FaultSpecError as exc:
                    self._send_json(400, {"error": str(exc)})
                    return
                self._send_json(200, sim.faults.describe())
            else:
                sim.faults.clear()
                self._send_json(200, sim.faults.describe())
        elif path == "/_sim/models":
            if method == "POST":
                models = body.get("models") if isinstance(body, dict) else None
                if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                    self._send_json(400, {"error": "expected {\"models\": [names]}"})
                    return
                sim.set_models(models)
            self._send_json(200, {"models": sim.models})
        elif path == "/_sim/requests":
            if method == "DELETE":
                sim.log.clear()
                self._send_json(200, {"cleared": True})
            else:
                self._send_json(200, {"requests": sim.log.all()})
        elif path == "/_sim/stats":
            config = sim.config
            self._send_json(200, {
                **sim.log.counts(), **sim.engine.snapshot(),
                "models": sim.models, **sim.faults.describe(),
                "config": {"pp_rate": config.pp_rate, "tg_rate": config.tg_rate, "slots": config.slots,
                           "ctx": config.ctx, "n_ctx_slot": config.n_ctx_slot, "instant": config.instant},
            })
        else:
            self._send_json(404, {"detail": "Not Found"})

