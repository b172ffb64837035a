"""The CPU latency model end to end: real requests, real wall-clock, checked as ratios."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.fakes.llm import count_prompt_tokens, expected_answer
from tests.fakes.llm.server import LITELLM_RETRY_WAIT
from tests.llm_sim.conftest import AUTH, MODEL, StartSim, post_chat, requests_log, stats, wait_until
from tests.llm_sim.test_unit_answers import schema_format

PP, TG = 1000.0, 200.0
# Long enough (hundreds of tokens) that ``max_tokens`` always pins the completion length.
LONG_SCHEMA = {"type": "object", "required": ["notes"], "properties": {
    "notes": {"type": "array", "items": {"type": "string"}, "minItems": 80, "maxItems": 80}}}
RATES = ["--pp-rate", str(PP), "--tg-rate", str(TG), "--overhead-ms", "0"]


def request(word: str, repeat: int, max_tokens: int, system: str | None = None, **extra: Any) -> dict[str, Any]:
    """A prompt of ``repeat`` one-token words; a schema answer cut at exactly ``max_tokens``."""
    messages = [{"role": "user", "content": (word + " ") * repeat}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return {"model": MODEL, "messages": messages, "max_tokens": max_tokens,
            "response_format": schema_format(LONG_SCHEMA), **extra}


def formula(body: dict[str, Any], cached: int = 0) -> float:
    assert expected_answer(body).completion_tokens == body["max_tokens"]
    return float((count_prompt_tokens(body["messages"]) - cached) / PP + body["max_tokens"] / TG)


def timed(url: str, body: dict[str, Any], timeout: float = 30.0) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = post_chat(url, body, timeout=timeout)
    return response, time.monotonic() - start


def concurrently(url: str, bodies: list[dict[str, Any]]) -> list[tuple[httpx.Response, float]]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: timed(url, b), bodies))


def test_one_request_takes_the_formula_time(start_sim: StartSim) -> None:
    url = start_sim(*RATES).url
    body = request("alpha", 300, 60)
    response, elapsed = timed(url, body)
    assert response.status_code == 200
    expected = formula(body, cached=0)  # a fresh slot: nothing cached
    assert expected * 0.95 <= elapsed <= expected * 1.5 + 0.1
    timings = response.json()["timings"]
    assert timings["prompt_ms"] == pytest.approx(timings["prompt_n"] / PP * 1000, rel=0.05)
    assert timings["predicted_ms"] == pytest.approx(60 / TG * 1000, rel=0.05)


def test_prefix_cache_makes_a_repeated_system_prompt_cheap(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    system = "You are a SOC analyst. " + "Rules: be precise. " * 120
    first, t1 = timed(url, request("alpha", 20, 5, system=system))
    second, t2 = timed(url, request("bravo", 20, 5, system=system))
    system_tokens = count_prompt_tokens([{"role": "system", "content": system}]) - 3
    assert first.json()["timings"]["cache_n"] < 5
    assert second.json()["timings"]["cache_n"] >= system_tokens
    assert t2 < t1 * 0.4
    log = requests_log(url)
    assert log[1]["cached_tokens"] >= system_tokens
    assert log[0]["slot"] == log[1]["slot"] == 0


def test_two_concurrent_requests_share_the_cpu(start_sim: StartSim) -> None:
    url = start_sim(*RATES).url
    _, alone = timed(url, request("alpha", 250, 50))
    results = concurrently(url, [request("bravo", 250, 50), request("delta", 250, 50)])
    for response, elapsed in results:
        assert response.status_code == 200
        assert 1.6 <= elapsed / alone <= 2.6, (elapsed, alone)
    busy = {r["slot"] for r in requests_log(url)[1:]}
    assert len(busy) == 2  # both ran in parallel slots, not queued


def test_a_request_beyond_the_slots_waits_in_the_queue(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    body_a, body_b = request("alpha", 250, 50), request("bravo", 250, 50)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(timed, url, body_a)
        wait_until(lambda: stats(url)["busy_slots"] == 1, what="first request on the slot")
        second = pool.submit(timed, url, body_b)
        wait_until(lambda: stats(url)["queue_length"] == 1, what="second request queued")
        (_, t_first), (_, t_second) = first.result(), second.result()
    alone = formula(body_a)
    assert alone * 0.95 <= t_first <= alone * 1.5  # not slowed: the second never ran beside it
    assert t_second >= alone * 1.6
    queued = requests_log(url)[1]["queued_seconds"]
    assert queued >= alone * 0.7


def test_abandoned_request_keeps_the_slot_busy(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    long_body = request("alpha", 200, 160)  # ~1.0 s
    expected_long = formula(long_body)
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        post_chat(url, long_body, timeout=0.25)
    short, _ = timed(url, request("bravo", 10, 2))
    finished = time.monotonic() - start
    assert short.status_code == 200
    assert finished >= expected_long * 0.9  # it waited for the abandoned answer to complete
    wait_until(lambda: requests_log(url)[0]["status"] is not None, what="abandoned request to finish")
    record = requests_log(url)[0]
    assert record["client_hung_up"] is True
    assert requests_log(url)[1]["queued_seconds"] >= expected_long * 0.5


def test_body_timeout_cancels_and_frees_the_slot(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    long_body = request("alpha", 200, 160, timeout=0.25, num_retries=0)
    response, elapsed = timed(url, long_body)
    assert response.status_code == 408
    error = response.json()["error"]
    assert error["code"] == "408"
    assert error["message"].startswith("litellm.Timeout: APITimeoutError - Request timed out.")
    assert 0.25 <= elapsed < 0.6
    short, t_short = timed(url, request("bravo", 10, 2))
    assert short.status_code == 200
    assert t_short < 0.4  # the slot was freed at once; the abandoned job had ~0.75 s left
    record = requests_log(url)[0]
    assert (record["attempts"], record["cancelled"], record["status"]) == (1, True, 408)


def test_body_timeout_with_default_retries_takes_three_attempts(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    response, elapsed = timed(url, request("alpha", 50, 300, timeout=0.2))  # 1.5 s of generation
    assert response.status_code == 408
    # Three attempts of 0.2 s, and LiteLLM waits ~2.25 s before each retry (measured on the real chain).
    assert 0.6 + 2 * LITELLM_RETRY_WAIT <= elapsed < 0.9 + 2 * LITELLM_RETRY_WAIT
    assert requests_log(url)[0]["attempts"] == 3


def test_retry_after_timeout_succeeds_thanks_to_the_prompt_cache(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    body = request("alpha", 400, 10, timeout=0.3, num_retries=1)  # 0.4 s prompt + 0.05 s answer
    response, elapsed = timed(url, body)
    assert response.status_code == 200
    record = requests_log(url)[0]
    assert record["attempts"] == 2
    assert record["cached_tokens"] >= 250  # the cancelled attempt's prompt work was kept
    # A retry from scratch would need 0.3 + 1.0x; LiteLLM waits LITELLM_RETRY_WAIT before it either way.
    assert elapsed < LITELLM_RETRY_WAIT + 0.3 + formula(body) * 0.8


def test_streaming_is_paced_by_the_generation_rate(start_sim: StartSim) -> None:
    url = start_sim("--pp-rate", "5000", "--tg-rate", "100", "--overhead-ms", "0").url
    body = request("alpha", 20, 50, stream=True)
    arrivals: list[float] = []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=10) as r:
        for line in r.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                arrivals.append(time.monotonic())
    assert len(arrivals) == 50
    spread = arrivals[-1] - arrivals[0]
    assert 49 / 100 * 0.85 <= spread <= 49 / 100 * 1.4


def test_stream_client_hanging_up_does_not_free_the_slot(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    long_body = request("alpha", 20, 160, stream=True)  # ~0.8 s of generation
    start = time.monotonic()
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=long_body, headers=AUTH, timeout=10) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                break  # hang up after the first token
    short, _ = timed(url, request("bravo", 10, 2))
    assert short.status_code == 200
    assert time.monotonic() - start >= formula(long_body) * 0.9
    wait_until(lambda: requests_log(url)[0]["client_hung_up"], what="hang-up to be recorded")


def test_body_timeout_mid_prompt_frees_the_slot_after_the_prompt_batch(start_sim: StartSim) -> None:
    url = start_sim(*RATES, "--slots", "1").url
    body = request("alpha", 700, 100, timeout=0.2, num_retries=0)  # ~0.7 s of prompt in one batch
    start = time.monotonic()
    response, elapsed = timed(url, body)
    assert response.status_code == 408
    assert elapsed < 0.5  # LiteLLM answers at its timeout...
    short, _ = timed(url, request("bravo", 10, 2))
    assert short.status_code == 200
    # ...but llama-server only sees the cancel once the prompt batch is decoded, not the answer.
    total = time.monotonic() - start
    prompt_seconds = count_prompt_tokens(body["messages"]) / PP
    assert prompt_seconds * 0.95 <= total < formula(body) * 0.9
