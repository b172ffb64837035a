"""Plain-HTTP helpers for tests that check what the official client hides (headers, raw bodies)."""

from __future__ import annotations

import base64
import functools
import os
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def auth_headers() -> dict[str, str]:
    """Credentials for a real cluster (ES_URL mode), as tests/conftest.py gives the official client."""
    if os.environ.get("ES_API_KEY"):
        return {"Authorization": f"ApiKey {os.environ['ES_API_KEY']}"}
    if os.environ.get("ES_USERNAME"):
        raw = f"{os.environ['ES_USERNAME']}:{os.environ.get('ES_PASSWORD', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return {}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading a CA bundle per client is slow on a busy machine."""
    ca = os.environ.get("ES_CA_CERT")
    return ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()


def raw_client(base_url: str, **kwargs: object) -> httpx.Client:
    verify: object = _tls_context() if base_url.startswith("https://") else False
    return httpx.Client(base_url=base_url, headers=auth_headers(), verify=verify, timeout=30,  # type: ignore[arg-type]
                        **kwargs)  # type: ignore[arg-type]


def wait_until(check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)  # sync-ok: polling interval of a deadline-bounded wait
