"""Token counting and deterministic answers as pure functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.llm import expected_answer
from tests.fakes.llm.tokens import count_prompt_tokens, count_tokens, tokenize
from tests.llm_sim.schema_check import errors

ALERTS = Path("/work/shared/data/alerts/alerts.ndjson")

ASSESSMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "risk", "confidence", "recommended_actions"],
    "properties": {
        "summary": {"type": "string", "maxLength": 200},
        "risk": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "recommended_actions": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
    },
}


def body(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": content}], **extra}


def schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "assessment", "schema": schema}}


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_tokenize_is_lossless(text: str) -> None:
    assert "".join(tokenize(text)) == text


def test_prose_is_about_four_characters_per_token() -> None:
    text = ("Identifies attempts to modify the WDigest security provider in the registry to force "
            "the user's password to be stored in clear text in memory.")
    assert 3.3 <= len(text) / count_tokens(text) <= 5.0


def test_prompt_counts_content_plus_template_overhead() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    expected = count_tokens("Be brief.") + count_tokens("Hello there") + 2 * 5 + 3
    assert count_prompt_tokens(messages) == expected


def test_content_parts_are_counted_like_a_string() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]}]
    assert count_prompt_tokens(parts) == count_prompt_tokens([{"role": "user", "content": "Hello there"}])


def test_same_request_same_answer_and_different_requests_differ() -> None:
    a = expected_answer(body("powershell encoded command on WIN-01"))
    assert a == expected_answer(body("powershell encoded command on WIN-01"))
    assert a != expected_answer(body("ssh brute force from 10.0.0.5 against bastion"))
    assert a != expected_answer(body("powershell encoded command on WIN-01"), sim_seed=1)


@pytest.mark.parametrize("line", range(0, 292, 29))
def test_schema_answers_are_valid_for_real_alerts(line: int) -> None:
    alert = json.loads(ALERTS.read_text().splitlines()[line])
    answer = expected_answer(body(json.dumps(alert)[:6000], response_format=schema_format(ASSESSMENT_SCHEMA)))
    assert answer.finish_reason == "stop"
    value = json.loads(answer.content)
    assert errors(value, ASSESSMENT_SCHEMA) == []
    assert answer.completion_tokens == count_tokens(answer.content)


def test_summaries_use_words_of_the_alert() -> None:
    fmt = schema_format(ASSESSMENT_SCHEMA)
    a = json.loads(expected_answer(body("mimikatz lsass credential dumping", response_format=fmt)).content)
    b = json.loads(expected_answer(body("rclone exfiltration to mega", response_format=fmt)).content)
    assert a["summary"] != b["summary"]
    assert any(w in a["summary"].lower() for w in ("mimikatz", "lsass", "credential", "dumping"))
    assert any(w in b["summary"].lower() for w in ("rclone", "exfiltration", "mega"))


def test_schema_features() -> None:
    schema = {
        "type": "object",
        "$defs": {"ioc": {"type": "object", "required": ["value", "kind"],
                          "properties": {"value": {"type": "string", "minLength": 3},
                                         "kind": {"const": "ip"}}}},
        "required": ["n", "flag", "maybe", "iocs", "choice", "tags"],
        "properties": {
            "n": {"type": "integer", "minimum": 5, "maximum": 7},
            "flag": {"type": "boolean"},
            "maybe": {"type": ["string", "null"], "maxLength": 10},
            "iocs": {"type": "array", "items": {"$ref": "#/$defs/ioc"}, "minItems": 2, "maxItems": 2},
            "choice": {"anyOf": [{"type": "number", "minimum": 10, "maximum": 11}, {"type": "string"}]},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1},
        },
    }
    for i in range(20):
        content = expected_answer(body(f"alert number {i}", response_format=schema_format(schema))).content
        assert errors(json.loads(content), schema) == [], content


def test_json_object_gives_an_object() -> None:
    content = expected_answer(body("anything", response_format={"type": "json_object"})).content
    assert isinstance(json.loads(content), dict)


def test_max_tokens_truncates_to_a_prefix() -> None:
    full = expected_answer(body("lsass dump", response_format=schema_format(ASSESSMENT_SCHEMA)))
    cut = expected_answer(body("lsass dump", response_format=schema_format(ASSESSMENT_SCHEMA), max_tokens=10))
    assert cut.finish_reason == "length"
    assert cut.completion_tokens == 10
    assert full.content.startswith(cut.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)


def test_context_limit_cuts_generation() -> None:
    request = body("word " * 50)
    answer = expected_answer(request, n_ctx=count_prompt_tokens(request["messages"]) + 3)
    assert answer.completion_tokens == 3
    assert answer.finish_reason == "length"


def test_plain_answers_vary_between_prose_fences_and_echo() -> None:
    contents = [expected_answer(body(f"host WIN-{i:02d} ran encoded powershell")).content for i in range(40)]
    assert any("```json" in c for c in contents)
    assert any(c.startswith("host WIN-") for c in contents)  # an echo of the input
    assert any("```" not in c and not c.startswith("host WIN-") for c in contents)
