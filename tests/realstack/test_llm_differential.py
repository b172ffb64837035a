"""The same requests to the real chain (LiteLLM 1.82.6 + llama-server) and to our simulator must be answered alike.

The requests are lme-enrich's own (bodies made by ``worker.assessing.llm.LLMClient`` for
``worker.assessing.prompt.build`` of corpus alerts) and the error cases users meet. Compared: status codes, error
bodies (keys, ``type``, ``param``, ``code``, the message with its numbers blanked) and what a client reads of an
answer (keys present, ``object``, ``model``, ``choices[0]`` keys and ``finish_reason``, ``usage`` keys, whether the
content is valid JSON of the schema asked for). Every difference is listed in ``KNOWN`` with its reason; a new one,
or one that went away, fails the test.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import pytest

from tests import kibana
from tests.fakes import tls
from tests.fakes.process import RunningServer, start_server
from tests.realstack.conftest import CHAIN_KEY, CHAIN_MODEL, RealChain, slow
from worker.assessing import prompt
from worker.assessing.llm import LLMClient

pytestmark = [pytest.mark.real_llm, pytest.mark.timeout(slow(600))]

OTHER_MODEL = "qwen3-4b-instruct"
# The chain's llama-server: 2 slots of 4096 tokens. Fast rates: the simulator's speed is not compared here.
SIM_FLAGS = ["--slots", "2", "--ctx", "8192", "--pp-rate", "40000", "--tg-rate", "4000", "--overhead-ms", "1"]
FROZEN_BODY_TIMEOUT = 5.0
# What llama.cpp's grammar holds an answer to: the whole schema (since v5 its only number is an integer, whose
# bounds json-schema-to-grammar enforces; a "number"'s it did not, and the 135M model answered -10.0).
GRAMMAR_SCHEMA = prompt.ANSWER_SCHEMA


def product_body(*, model: str = CHAIN_MODEL, max_tokens: int = 400, read_timeout: float = 600.0,
                 messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The body lme-enrich's LLM client sends for a prompt (captured from the client itself, not rebuilt)."""
    captured: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(json.loads(request.content))
        return httpx.Response(200, json={"model": model, "choices": [{"message": {"content": "{}"}}]})

    client = LLMClient("https://litellm.invalid", CHAIN_KEY, model, max_tokens=max_tokens, read_timeout=read_timeout,
                       transport=httpx.MockTransport(handler))
    source = kibana.eligible(kibana.load_corpus())[0]
    client.complete(messages or prompt.build(source).messages, prompt.response_format())
    client.close()
    return captured[0]


def corpus_prompts(count: int) -> list[list[dict[str, str]]]:
    """The prompts of the first ``count`` corpus alerts of distinct rules."""
    seen: set[str] = set()
    prompts = []
    for source in kibana.eligible(kibana.load_corpus()):
        built = prompt.build(source)
        rule = dict(built.pairs).get("rule", "")
        if rule not in seen:
            seen.add(rule)
            prompts.append(built.messages)
        if len(prompts) == count:
            break
    return prompts


@dataclass
class Case:
    body: dict[str, Any] | None  # None: GET /v1/models
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {CHAIN_KEY}"})
    real_fault: str = ""  # "down": llama-server stopped; "frozen": llama-server SIGSTOPped
    sim_fault: dict[str, Any] | None = None


def cases() -> dict[str, Case]:
    # Room for the longest answer the schema allows: the 135M model can fill its strings with hex and digits,
    # about a token a character, and 400 tokens (the product default) then cut it (finish_reason length).
    made = {f"assess-{n}": Case(product_body(messages=messages, max_tokens=1024))
            for n, messages in enumerate(corpus_prompts(3))}
    huge = [{"role": "system", "content": prompt.SYSTEM_PROMPT}, {"role": "user", "content": "lsass " * 5000}]
    made.update({
        "max-tokens": Case(product_body(max_tokens=16)),
        "wrong-key": Case(product_body(), headers={"Authorization": "Bearer sk-not-the-master-key"}),
        "no-key": Case(product_body(), headers={}),
        "no-bearer": Case(product_body(), headers={"Authorization": CHAIN_KEY}),
        "unknown-model": Case(product_body(model=OTHER_MODEL)),
        "context-overflow": Case(product_body(messages=huge)),
        "backend-down": Case(product_body(), real_fault="down", sim_fault={"kind": "backend_down", "count": 1}),
        # The client's body timeout is its read timeout minus 15 s: 20 s gives LiteLLM 5 s.
        "timeout": Case(product_body(read_timeout=FROZEN_BODY_TIMEOUT + 15), real_fault="frozen",
                        sim_fault={"kind": "hang", "count": 1}),
        "empty-messages": Case({**product_body(), "messages": [], "max_tokens": 2}),
        "models": Case(None),
        "models-wrong-key": Case(None, headers={"Authorization": "Bearer sk-not-the-master-key"}),
    })
    return made


# (case, facet) -> why the simulator answers differently from the real chain, on purpose.
KNOWN: dict[tuple[str, str], str] = {}


def _blank_numbers(text: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", text)


def _keys(value: Any) -> list[str] | str:
    return sorted(value) if isinstance(value, dict) else type(value).__name__


def _content_facet(content: Any, finish_reason: Any) -> str:
    try:
        jsonschema.validate(json.loads(content), GRAMMAR_SCHEMA)
    except (TypeError, ValueError, jsonschema.ValidationError):
        return f"not schema-valid JSON (finish {finish_reason})"
    return "schema-valid JSON"


def facets(response: httpx.Response, body: dict[str, Any] | None) -> dict[str, Any]:
    """What a client can read of a response, with the values that legitimately vary blanked."""
    out: dict[str, Any] = {"status": response.status_code,
                           "content-type": response.headers.get("content-type", "").split(";")[0]}
    try:
        data = response.json()
    except ValueError:
        out["body"] = "not JSON"
        return out
    out["keys"] = _keys(data)
    if not isinstance(data, dict):
        return out
    if "error" in data:
        error = data["error"]
        out["error.keys"] = _keys(error)
        if isinstance(error, dict):
            for key in ("type", "param", "code"):
                out[f"error.{key}"] = error.get(key)
            out["error.message"] = _blank_numbers(str(error.get("message")))
        return out
    if body is None:  # /v1/models
        out["object"] = data.get("object")
        out["data.ids"] = [item.get("id") for item in data.get("data", [])]
        out["data.keys"] = sorted({key for item in data.get("data", []) for key in item})
        return out
    out["object"] = data.get("object")
    out["model"] = data.get("model")
    out["id"] = re.sub(r"[A-Za-z0-9]", "x", str(data.get("id", "")).removeprefix("chatcmpl-"))
    out["system_fingerprint"] = type(data.get("system_fingerprint")).__name__
    out["choices.len"] = len(data.get("choices") or [])
    choice = (data.get("choices") or [{}])[0]
    out["choice.keys"] = _keys(choice)
    out["choice.finish_reason"] = choice.get("finish_reason")
    message = choice.get("message") or {}
    out["message.keys"] = _keys(message)
    out["message.role"] = message.get("role")
    out["message.content"] = _content_facet(message.get("content"), choice.get("finish_reason"))
    usage = data.get("usage") or {}
    out["usage.keys"] = _keys(usage)
    out["usage.prompt_tokens_details.keys"] = _keys(usage.get("prompt_tokens_details"))
    out["usage.completion_tokens"] = usage.get("completion_tokens") if choice.get("finish_reason") == "length" else "-"
    out["usage.total"] = usage.get("total_tokens") == usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    out["timings.keys"] = _keys(data.get("timings"))
    return out


def send(client: httpx.Client, case: Case) -> httpx.Response:
    if case.body is None:
        return client.get("/v1/models", headers=case.headers)
    return client.post("/v1/chat/completions", json=case.body, headers=case.headers)


@pytest.fixture(scope="module")
def sim(test_ca: tls.TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    cert = test_ca.issue(tmp_path_factory.mktemp("sim-cert"), "sim", ("localhost", "127.0.0.1"))
    server = start_server("tests.fakes.llm", ["--api-key", CHAIN_KEY, "--model", CHAIN_MODEL, "--tls-cert",
                                              str(cert.cert), "--tls-key", str(cert.key), *SIM_FLAGS])
    yield server
    server.stop()


def client_for(url: str, ca: tls.TestCA) -> httpx.Client:
    # No default Authorization: each case sends its own (or none).
    return httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(ca.cert_path)),
                        timeout=slow(600), trust_env=False)


def test_real_chain_and_simulator_agree(chain: RealChain, sim: RunningServer, test_ca: tls.TestCA) -> None:
    real_faults: dict[str, Callable[[], AbstractContextManager[None]]] = {
        "": nullcontext, "down": chain.backend_down, "frozen": chain.backend_frozen}
    differences: dict[tuple[str, str], tuple[Any, Any]] = {}
    table = []
    with client_for(chain.url, test_ca) as real, client_for(sim.url, test_ca) as fake:
        for name, case in cases().items():
            with real_faults[case.real_fault]():
                real_facets = facets(send(real, case), case.body)
            if case.sim_fault:
                fake.post("/_sim/faults", json=case.sim_fault).raise_for_status()
            sim_facets = facets(send(fake, case), case.body)
            fake.delete("/_sim/faults").raise_for_status()
            table.append(f"{name}: real {real_facets['status']} / sim {sim_facets['status']}")
            for facet in sorted(set(real_facets) | set(sim_facets)):
                if real_facets.get(facet) != sim_facets.get(facet):
                    differences[(name, facet)] = (real_facets.get(facet), sim_facets.get(facet))
            if name.startswith("assess-"):
                # Grammar-constrained: the real 135M model's answer fits the schema whatever it says.
                assert real_facets["message.content"] == "schema-valid JSON", real_facets
    print("\nREAL-LLM differential:\n  " + "\n  ".join(table))
    for key, (real_value, sim_value) in differences.items():
        print(f"  differs {key}: real {real_value!r} / sim {sim_value!r} ({KNOWN.get(key, 'NOT KNOWN')})")
    unexplained = {k: v for k, v in differences.items() if k not in KNOWN}
    assert not unexplained, f"the simulator answers unlike the real chain: {unexplained}"
    gone = set(KNOWN) - set(differences)
    assert not gone, f"listed differences that no longer exist (remove them from KNOWN): {gone}"
