"""The real LLM chain (llama-server behind LiteLLM 1.82.6, LME's config shape) answers as our simulator assumes.

The chain fixture (tests/realstack/conftest.py) starts it once for every real_llm test; it needs
``python -m tests.realstack.llm --prepare-only`` first, and is skipped when that was not done, unless
``LME_REAL_LLM_REQUIRED=1``, which turns the skip into a failure (for CI).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.fakes import tls
from tests.realstack.conftest import CHAIN_KEY as API_KEY
from tests.realstack.conftest import CHAIN_MODEL as MODEL
from tests.realstack.conftest import RealChain

pytestmark = [pytest.mark.real_llm, pytest.mark.timeout(600)]

ASSESSMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        # A key and enum values that appear nowhere in the prompt: only the grammar can produce them.
        "triage_code": {"type": "string", "enum": ["ZEBRA-7", "QUOKKA-3"]},
    },
    "required": ["severity", "triage_code"],
    "additionalProperties": False,
}


def ca_context(ca: tls.TestCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca.cert_path)


@pytest.fixture(scope="module")
def client(chain: RealChain, test_ca: tls.TestCA) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chain.url, verify=ca_context(test_ca), timeout=120, trust_env=False,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


def chat(client: httpx.Client, content: str, **extra: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}
    return client.post("/v1/chat/completions", json=body)


def test_json_schema_answer_is_schema_valid(client: httpx.Client) -> None:
    r = chat(client, "Assess this alert: 'powershell.exe -enc SQBFAFgA' run by user bob on host WS-12. Reply in JSON.",
             max_tokens=200, temperature=0,
             response_format={"type": "json_schema",
                              "json_schema": {"name": "assessment", "strict": True, "schema": ASSESSMENT_SCHEMA}})
    assert r.status_code == 200, r.text
    data = r.json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"
    jsonschema.validate(json.loads(choice["message"]["content"]), ASSESSMENT_SCHEMA)
    assert data["usage"]["prompt_tokens"] > 0
    assert data["usage"]["completion_tokens"] > 0


def test_tls_is_verified_against_the_ca(chain: RealChain, test_ca: tls.TestCA, tmp_path: Path) -> None:
    with httpx.Client(verify=ca_context(test_ca), trust_env=False) as ok:
        assert ok.get(f"{chain.url}/health/liveliness").status_code == 200
    other = tls.TestCA.create(tmp_path / "other-ca")
    with httpx.Client(verify=ca_context(other), trust_env=False) as wrong, pytest.raises(httpx.ConnectError):
        wrong.get(f"{chain.url}/health/liveliness")
    with httpx.Client(trust_env=False) as system_cas, pytest.raises(httpx.ConnectError):
        system_cas.get(f"{chain.url}/health/liveliness")


def test_wrong_key_is_400_no_db_connection(chain: RealChain, client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-not-the-master-key"},
                    json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "no_db_connection"


def test_no_key_is_401(chain: RealChain, test_ca: tls.TestCA) -> None:
    with httpx.Client(verify=ca_context(test_ca), trust_env=False) as anon:
        r = anon.post(f"{chain.url}/v1/chat/completions",
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["type"] == "auth_error"


def test_unknown_model_is_400(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions",
                    json={"model": "gemma-3-1b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    assert r.status_code == 400, r.text
    assert "Invalid model name passed in model=gemma-3-1b" in r.json()["error"]["message"]


def test_small_max_tokens_stops_with_length(client: httpx.Client) -> None:
    r = chat(client, "Write a long story about a lighthouse keeper.", max_tokens=3, temperature=0)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3


def test_models_lists_the_lme_alias(client: httpx.Client) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["data"]] == [MODEL]
