"""LiteLLM client over httpx: one request, errors classified into what a caller can act on.

Slow answers are normal here: LME's model needs tens of seconds per answer on a CPU and queues behind
other users. When a client gives up, LiteLLM does not cancel the upstream call and the model keeps
generating for nobody, so we pass LiteLLM a ``timeout`` (with ``num_retries: 0``) in the request body,
below our own read timeout: then it cancels upstream and the slot is freed.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Final

import httpx

log = logging.getLogger(__name__)

# How much longer we wait than we ask LiteLLM to: room for its cancel to reach us as a 408.
BODY_TIMEOUT_MARGIN_S: Final = 15.0
MAX_ANSWER_BYTES: Final = 1 << 20
RETRYABLE_KINDS: Final = frozenset({"rate_limited", "server", "timeout", "connection", "protocol"})


class LLMError(Exception):
    """A failed LLM call. ``kind`` says what went wrong; ``retryable`` whether trying again can help."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


@dataclass(frozen=True)
class Completion:
    content: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str
    duration_s: float


def tls_verify(ca_cert: Path | None, verify: bool) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for our settings: the CA file, the system store, or (asked for) nothing."""
    if not verify:
        return False
    return ssl.create_default_context(cafile=str(ca_cert)) if ca_cert is not None else True


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:500]
    return str(body)[:300]


def classify(response: httpx.Response, model: str) -> LLMError:
    """Turn an error response into an LLMError that says which of LiteLLM's many 400s this is."""
    status = response.status_code
    message = _error_message(response)
    lowered = message.lower()
    if status == 401 or (status == 400 and ("no connected db" in lowered or "no_db_connection" in response.text)):
        return LLMError("auth", f"LiteLLM refused the API key (HTTP {status}: {message}); check LME_ENRICH_LLM_API_KEY",
                        status=status)
    if status in (400, 404) and "invalid model name" in lowered:
        return LLMError("unknown_model", f"LiteLLM does not serve model {model!r} (HTTP {status}); "
                        "check LME_ENRICH_LLM_MODEL against /v1/models", status=status)
    if status == 400 and ("context size" in lowered or "context length" in lowered or "too many tokens" in lowered):
        return LLMError("context_overflow", f"the prompt is longer than the model's context: {message}", status=status)
    if status == 429:
        return LLMError("rate_limited", f"LiteLLM is rate limiting (HTTP 429): {message}", status=status,
                        retry_after=_retry_after(response))
    if status == 408:
        return LLMError("timeout", f"LiteLLM timed out waiting for the model (HTTP 408): {message}", status=status)
    if status >= 500:
        return LLMError("server", f"LiteLLM or the model failed (HTTP {status}): {message}", status=status,
                        retry_after=_retry_after(response))
    return LLMError("bad_request", f"LiteLLM rejected the request (HTTP {status}): {message}", status=status)


class LLMClient:
    """Talks to LiteLLM's OpenAI-compatible API. Thread-safe; one per process is enough."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        verify: ssl.SSLContext | bool = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        max_tokens: int = 400,
        temperature: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            verify=verify,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        """One request, read whole within ``timeout`` (default the read timeout) plus the connect timeout.

        httpx's timeouts bound each read, not the answer: a proxy that trickles a byte now and then would hold
        the task, and its model slot, for ever. The whole answer is also capped in size (``MAX_ANSWER_BYTES``).
        """
        wait = self.read_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait + self.connect_timeout
        try:
            if timeout is not None:
                kwargs["timeout"] = timeout
            with self._client.stream(method, path, **kwargs) as streamed:
                body = bytearray()
                for chunk in streamed.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise LLMError("protocol", f"LiteLLM's answer to {path} passed {MAX_ANSWER_BYTES} bytes; "
                                       "an answer is a few KB")
                    if time.monotonic() > deadline:
                        raise LLMError("timeout", f"LiteLLM's answer to {path} was still arriving after "
                                       f"{wait + self.connect_timeout:g}s")
                # Decoded already: the copy must not claim an encoding its body no longer has.
                headers = [(k, v) for k, v in streamed.headers.multi_items()
                           if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
                return httpx.Response(streamed.status_code, headers=headers, content=bytes(body),
                                      request=streamed.request)
        except httpx.TimeoutException as exc:
            raise LLMError("timeout", f"no answer from LiteLLM at {self._client.base_url} within the timeout "
                           f"({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            message = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in message or "certificate" in message.lower():
                raise LLMError("tls", f"TLS verification of {self._client.base_url} failed: {message}; "
                               "check LME_ENRICH_LLM_CA_CERT") from exc
            raise LLMError("connection", f"cannot connect to LiteLLM at {self._client.base_url}: {message}") from exc
        except httpx.TransportError as exc:
            raise LLMError("connection", f"connection to LiteLLM broke: {type(exc).__name__}: {exc}") from exc

    def list_models(self) -> list[str]:
        """The model names LiteLLM serves (``GET /v1/models``)."""
        response = self._request("GET", "/v1/models", timeout=30.0)
        if response.status_code != 200:
            raise classify(response, self.model)
        try:
            return [str(item["id"]) for item in response.json()["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMError("protocol", f"/v1/models answered something unexpected: {response.text[:200]}") from exc

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any] | None = None, *,
                 max_tokens: int | None = None) -> Completion:
        """One chat completion; raises :class:`LLMError`."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens if max_tokens is None else max_tokens,
            "temperature": self.temperature,
            # LiteLLM cancels the upstream call at this timeout instead of leaving the model busy.
            "timeout": max(self.read_timeout - BODY_TIMEOUT_MARGIN_S, 5.0),
            "num_retries": 0,
        }
        if response_format is not None:
            body["response_format"] = response_format
        started = time.monotonic()
        response = self._request("POST", "/v1/chat/completions", json=body)
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            raise classify(response, self.model)
        try:
            data = response.json()
            choice = data["choices"][0]
            content = choice["message"].get("content") or ""
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError("protocol", f"LiteLLM's reply has no usable choice: {response.text[:200]!r}") from exc
        return Completion(
            content=str(content),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            model=str(data.get("model") or self.model),
            duration_s=elapsed,
        )
