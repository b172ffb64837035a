"""LiteLLM 1.82 proxy error responses, with the bodies LME's proxy returns.

Checked against the real chain (LiteLLM 1.82.6 in front of llama-server) by
``tests/realstack/test_llm_differential.py``.
"""

from __future__ import annotations

from typing import Any

LLAMA_API_BASE = "https://lme-llama-cpp:8080/v1"


class ProxyError(Exception):
    """An error that becomes LiteLLM's ``{"error": {...}}`` JSON response."""

    def __init__(
        self, status: int, message: str, type_: str | None = None, param: str | None = None,
        *, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": str(self.status)}}


def no_api_key() -> ProxyError:
    return ProxyError(401, "Authentication Error, No api key passed in.", "auth_error", "None")


def malformed_api_key() -> ProxyError:
    return ProxyError(
        401, "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.",
        "auth_error", "None",
    )


def no_db_connection() -> ProxyError:
    # Without DATABASE_URL LiteLLM cannot look up a key that is not the master key.
    return ProxyError(400, "No connected db.", "no_db_connection", None)


def invalid_model(model: str) -> ProxyError:
    # LiteLLM 1.82.6 puts the str() of its own {'error': ...} dict in the message (measured).
    text = (f"/chat/completions: Invalid model name passed in model={model}. "
            "Call `/v1/models` to view available models for your key.")
    return ProxyError(400, str({"error": text}), "None", "None")


def bad_request(detail: str) -> ProxyError:
    return ProxyError(400, detail, "None", "None")


def _model_group(model: str) -> str:
    return f"Received Model Group={model}\nAvailable Model Group Fallbacks=None"


def context_exceeded(prompt_tokens: int, n_ctx: int, model: str) -> ProxyError:
    return ProxyError(
        400,
        f"litellm.BadRequestError: OpenAIException - request ({prompt_tokens} tokens) exceeds the "
        f"available context size ({n_ctx} tokens), try increasing it. {_model_group(model)}",
    )


def backend_down(model: str) -> ProxyError:
    # The same message whatever num_retries was (no "LiteLLM Retried" suffix: measured with 0, 1 and 2).
    return ProxyError(
        500,
        f"litellm.InternalServerError: InternalServerError: OpenAIException - Connection error.. {_model_group(model)}",
    )


def request_timeout(model: str, timeout: float, taken: float) -> ProxyError:
    """``taken``: the last attempt's seconds (not the whole request's), as LiteLLM reports it."""
    return ProxyError(
        408,
        "litellm.Timeout: APITimeoutError - Request timed out. Error_str: Request timed out. "
        f"- timeout value={timeout}, time taken={round(taken, 2)} seconds\n\n"
        f"Deployment Info: request_timeout: None\ntimeout: None. {_model_group(model)}",
    )


def rate_limited(model: str, retry_after: int) -> ProxyError:
    return ProxyError(
        429,
        "litellm.RateLimitError: RateLimitError: OpenAIException - Too many requests. "
        f"Received Model Group={model}\nAvailable Model Group Fallbacks=None",
        "throttling_error", None, headers={"Retry-After": str(retry_after)},
    )


def upstream_status(model: str, status: int) -> ProxyError:
    names = {
        500: ("InternalServerError", "Internal server error"),
        502: ("APIError", "Bad gateway"),
        503: ("ServiceUnavailableError", "Service Unavailable: the server is loading the model"),
    }
    name, text = names.get(status, ("APIError", "Upstream error"))
    return ProxyError(
        status,
        f"litellm.{name}: {name}: OpenAIException - {text}. Received Model Group={model}\n"
        "Available Model Group Fallbacks=None",
    )
