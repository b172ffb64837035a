"""LiteLLM's API shapes, auth and error bodies, over real HTTP to the simulator process."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.fakes.llm import count_prompt_tokens, expected_answer
from tests.llm_sim.conftest import AUTH, MODEL, StartSim, chat_body, post_chat, stats, wait_until
from tests.llm_sim.schema_check import errors
from tests.llm_sim.test_unit_answers import ASSESSMENT_SCHEMA, schema_format

NO_KEY = {"error": {"message": "Authentication Error, No api key passed in.", "type": "auth_error",
                    "param": "None", "code": "401"}}
MALFORMED = {"error": {
    "message": "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.",
    "type": "auth_error", "param": "None", "code": "401"}}
NO_DB = {"error": {"message": "No connected db.", "type": "no_db_connection", "param": None, "code": "400"}}


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/chat/completions"), ("POST", "/chat/completions"), ("GET", "/v1/models"),
    ("GET", "/models"), ("GET", "/health"),
])
@pytest.mark.parametrize("case", [
    ({}, 401, NO_KEY),
    ({"Authorization": "sk-lme-llama-proxy"}, 401, MALFORMED),
    ({"Authorization": "Bearer sk-wrong"}, 400, NO_DB),
], ids=["no-key", "no-bearer", "wrong-key"])
def test_auth_errors(sim_url: str, method: str, path: str,
                     case: tuple[dict[str, str], int, dict[str, Any]]) -> None:
    headers, status, expected = case
    response = httpx.request(method, sim_url + path, headers=headers, json=chat_body(), timeout=10)
    assert response.status_code == status
    assert response.json() == expected


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions"])
def test_chat_completion_shape(sim_url: str, path: str) -> None:
    request = chat_body(max_tokens=200, temperature=0.1, seed=3, stream_options={"x": 1},
                        some_unknown_param=True)
    response = httpx.post(sim_url + path, json=request, headers=AUTH, timeout=10)
    assert response.status_code == 200
    data = response.json()
    expected = expected_answer(request)
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == MODEL
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert data["choices"][0]["message"]["content"] == expected.content
    assert data["choices"][0]["finish_reason"] == expected.finish_reason
    timings = data["timings"]
    assert data["usage"] == {"prompt_tokens": expected.prompt_tokens,
                             "completion_tokens": expected.completion_tokens,
                             "total_tokens": expected.prompt_tokens + expected.completion_tokens,
                             "prompt_tokens_details": {"cached_tokens": timings["cache_n"]}}
    assert expected.prompt_tokens == count_prompt_tokens(request["messages"])
    assert timings["predicted_n"] == expected.completion_tokens
    assert timings["prompt_n"] + timings["cache_n"] == expected.prompt_tokens


def test_answers_are_deterministic_and_depend_on_the_request(sim_url: str) -> None:
    first = post_chat(sim_url, chat_body("lsass access by procdump")).json()
    again = post_chat(sim_url, chat_body("lsass access by procdump")).json()
    other = post_chat(sim_url, chat_body("new service installed by psexec")).json()
    assert first["choices"] == again["choices"]
    assert first["id"] != again["id"]
    assert first["choices"][0]["message"]["content"] != other["choices"][0]["message"]["content"]


def test_schema_answer_is_valid_json(sim_url: str) -> None:
    request = chat_body("Encoded PowerShell spawned by winword.exe on WIN-07",
                        response_format=schema_format(ASSESSMENT_SCHEMA), max_tokens=400)
    data = post_chat(sim_url, request).json()
    content = data["choices"][0]["message"]["content"]
    assert data["choices"][0]["finish_reason"] == "stop"
    assert errors(json.loads(content), ASSESSMENT_SCHEMA) == []
    assert content == expected_answer(request).content


def test_max_tokens_truncates_schema_answer(sim_url: str) -> None:
    request = chat_body("Encoded PowerShell", response_format=schema_format(ASSESSMENT_SCHEMA), max_tokens=8)
    data = post_chat(sim_url, request).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 8
    with pytest.raises(json.JSONDecodeError):
        json.loads(data["choices"][0]["message"]["content"])


def test_unknown_model(sim_url: str) -> None:
    response = post_chat(sim_url, {**chat_body(), "model": "gemma-3-1b"})
    assert response.status_code == 400
    # LiteLLM 1.82.6 wraps the text in the str() of a dict (measured on the real chain).
    assert response.json() == {"error": {
        "message": "{'error': '/chat/completions: Invalid model name passed in model=gemma-3-1b. "
                   "Call `/v1/models` to view available models for your key.'}",
        "type": "None", "param": "None", "code": "400"}}


def test_prompt_over_slot_context_is_rejected_at_once(sim_url: str) -> None:
    request = chat_body("lsass " * 5000)
    n = count_prompt_tokens(request["messages"])
    assert n > 4096
    response = post_chat(sim_url, request)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"litellm.BadRequestError: OpenAIException - request ({n} tokens) exceeds the available "
        "context size (4096 tokens), try increasing it. Received Model Group=lfm2.5-1.2b-instruct\n"
        "Available Model Group Fallbacks=None")
    assert response.json()["error"]["code"] == "400"


def test_ctx_is_split_across_slots(start_sim: StartSim) -> None:
    url = start_sim("--instant", "--slots", "2", "--ctx", "1000").url
    request = chat_body("lsass " * 600)
    response = post_chat(url, request)
    assert response.status_code == 400
    assert "available context size (500 tokens)" in response.json()["error"]["message"]


def test_models_endpoint_and_runtime_switch(start_sim: StartSim) -> None:
    url = start_sim("--instant", "--model", "a-model", "--model", "b-model").url
    data = httpx.get(f"{url}/v1/models", headers=AUTH).json()
    assert data["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in data["data"]] == [
        ("a-model", "model", "openai"), ("b-model", "model", "openai")]
    assert all(isinstance(m["created"], int) for m in data["data"])
    assert httpx.post(f"{url}/_sim/models", json={"models": ["qwen2.5-0.5b"]}).status_code == 200
    assert [m["id"] for m in httpx.get(f"{url}/models", headers=AUTH).json()["data"]] == ["qwen2.5-0.5b"]
    assert post_chat(url, {**chat_body(), "model": "a-model"}).status_code == 400
    ok = post_chat(url, {**chat_body(), "model": "qwen2.5-0.5b"})
    assert ok.status_code == 200
    assert ok.json()["model"] == "qwen2.5-0.5b"


def test_health_endpoints(sim_url: str) -> None:
    live = httpx.get(f"{sim_url}/health/liveliness")
    assert (live.status_code, live.json()) == (200, "I'm alive!")
    ready = httpx.get(f"{sim_url}/health/readiness", headers={"Authorization": "Bearer wrong"})
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"
    assert ready.json()["db"] == "Not connected"
    health = httpx.get(f"{sim_url}/health", headers=AUTH, timeout=10)
    assert health.status_code == 200
    data = health.json()
    assert (data["healthy_count"], data["unhealthy_count"]) == (1, 0)
    assert data["healthy_endpoints"][0]["model"] == f"openai/{MODEL}"
    assert data["unhealthy_endpoints"] == []


def test_health_costs_a_one_token_call_per_model(start_sim: StartSim) -> None:
    url = start_sim("--instant", "--model", "a", "--model", "b").url
    data = httpx.get(f"{url}/health", headers=AUTH).json()
    assert data["healthy_count"] == 2
    stats = httpx.get(f"{url}/_sim/stats").json()
    assert stats["completed_jobs"] == 2
    record = httpx.get(f"{url}/_sim/requests").json()["requests"][-1]
    assert record["completion_tokens"] == 2


def test_streaming_format(sim_url: str) -> None:
    request = chat_body("Rundll32 loading comsvcs.dll MiniDump", stream=True)
    expected = expected_answer(request)
    with httpx.stream("POST", f"{sim_url}/v1/chat/completions", json=request, headers=AUTH,
                      timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == expected.content
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1
    assert finish[0]["choices"][0]["finish_reason"] == expected.finish_reason
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == expected.completion_tokens
    assert chunks[-1]["usage"]["prompt_tokens"] == expected.prompt_tokens
    assert len(chunks) == expected.completion_tokens + 2  # one chunk per token


def test_streaming_with_max_tokens_ends_with_length(sim_url: str) -> None:
    request = chat_body("Rundll32 loading comsvcs.dll MiniDump", stream=True, max_tokens=3)
    with httpx.stream("POST", f"{sim_url}/chat/completions", json=request, headers=AUTH, timeout=10) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line and line != "data: [DONE]"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


def test_streaming_errors_are_plain_json(sim_url: str) -> None:
    response = post_chat(sim_url, {**chat_body(stream=True), "model": "nope"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"


def test_invalid_json_body_is_a_400(sim_url: str) -> None:
    response = httpx.post(f"{sim_url}/v1/chat/completions", content=b"{not json", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "400"


def test_unknown_path_is_404(sim_url: str) -> None:
    assert httpx.get(f"{sim_url}/v2/nothing", headers=AUTH).status_code == 404


def test_instant_mode_still_answers_identically(start_sim: StartSim, sim_url: str) -> None:
    url = start_sim("--instant").url
    request = chat_body("same request", response_format=schema_format(ASSESSMENT_SCHEMA))
    instant = post_chat(url, request).json()
    paced = post_chat(sim_url, request).json()
    assert instant["choices"] == paced["choices"]
    # The prompt cache hits (usage.prompt_tokens_details) depend on what each simulator's slots saw before.
    assert {**instant["usage"], "prompt_tokens_details": None} == {**paced["usage"], "prompt_tokens_details": None}
    assert instant["timings"]["predicted_ms"] == 0


def test_seed_flag_changes_answers(start_sim: StartSim, sim_url: str) -> None:
    url = start_sim("--instant", "--seed", "42").url
    request = chat_body("same request")
    assert post_chat(url, request).json()["choices"] != post_chat(sim_url, request).json()["choices"]
    assert post_chat(url, request).json()["choices"][0]["message"]["content"] == expected_answer(
        request, sim_seed=42).content


def test_sigterm_exits_zero(start_sim: StartSim) -> None:
    server = start_sim("--instant")
    assert post_chat(server.url, chat_body()).status_code == 200
    assert server.stop() == 0


def test_keep_alive_connection_survives_errors_and_bodies(sim_url: str) -> None:
    with httpx.Client(base_url=sim_url, timeout=10) as client:
        assert client.request("GET", "/v1/models", json={"ignored": True}).status_code == 401
        assert client.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": "x"}).status_code == 401
        assert client.post("/v1/chat/completions", json=chat_body(), headers=AUTH).status_code == 200
        chunked = client.post("/v1/chat/completions", content=iter([json.dumps(chat_body()).encode()]),
                              headers={**AUTH, "Content-Type": "application/json"})
        assert chunked.status_code == 200
        assert client.get("/health/liveliness").status_code == 200


def test_sigterm_with_requests_in_flight_exits_zero(start_sim: StartSim) -> None:
    server = start_sim("--pp-rate", "10", "--tg-rate", "10", "--slots", "1")
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(post_chat, server.url, chat_body(f"alert {i}"), timeout=10) for i in range(2)]
        wait_until(lambda: stats(server.url)["queue_length"] == 1, what="one running, one queued")
        start = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - start < 3
        for future in futures:
            with pytest.raises(httpx.TransportError):
                future.result()
