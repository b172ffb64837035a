"""Deterministic answers: the content a small instruct model would write for a request.

The answer is a pure function of the request (model, messages, response_format, temperature,
seed) and of the simulator's own seed; ``max_tokens`` and the slot's context size only cut it, so
a truncated answer is always a prefix of the full one. With a JSON schema the content conforms to
it (llama.cpp enforces the grammar) unless generation stops at ``max_tokens`` first.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.llm.tokens import count_prompt_tokens, message_text, tokenize

DEFAULT_SLOT_CONTEXT = 4096
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{2,30}")
_STOPWORD_TEXT = (
    "the and for with that this from are was were has have not you your into over per its any all "
    "our out can may must should would will json only field fields return returns answer object "
    "string schema following given below above alert assess assessment"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_FALLBACK_WORDS = ("activity", "process", "host", "network", "user", "event", "behaviour", "system")
_ADJECTIVES = ("suspicious", "unusual", "expected", "anomalous", "notable", "benign-looking", "rare")
_TEMPLATES = (
    "The {a} activity involving {b} looks {adj}.",
    "Observed {a} on {b}, which is {adj} for this environment.",
    "{A} together with {b} suggests {adj} behaviour.",
    "Review {a} and {b} to confirm whether this is {adj}.",
    "The event shows {a} linked to {b}.",
    "{A} was recorded near {b}; treat it as {adj} until verified.",
)
_ACTIONS = ("Isolate", "Review", "Verify", "Check", "Collect", "Escalate", "Monitor")


@dataclass(frozen=True)
class Answer:
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def request_seed(body: Mapping[str, Any], sim_seed: int = 0) -> int:
    """A stable 64-bit seed from the parts of the request that decide the answer."""
    key = {
        "model": body.get("model"),
        "messages": body.get("messages"),
        "response_format": body.get("response_format"),
        "temperature": body.get("temperature"),
        "seed": body.get("seed"),
        "sim_seed": sim_seed,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def prompt_words(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Distinct plausible words of the last user message, in order (prose is built from them)."""
    text = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = message_text(message.get("content"))
            break
    seen: dict[str, None] = {}
    for raw in _WORD.findall(text):
        word = raw.strip(".-_")
        if len(word) >= 3 and word.lower() not in _STOPWORDS:
            seen.setdefault(word, None)
    return list(seen) or list(_FALLBACK_WORDS)


class _Writer:
    """Builds values from a seeded RNG and the prompt's words."""

    def __init__(self, rng: random.Random, words: list[str], root: Mapping[str, Any] | None = None):
        self.rng = rng
        self.words = words
        self.root = root or {}

    def word(self) -> str:
        return self.rng.choice(self.words)

    def sentence(self) -> str:
        a, b = self.word(), self.word()
        template = self.rng.choice(_TEMPLATES)
        return template.format(a=a, A=a[:1].upper() + a[1:], b=b, adj=self.rng.choice(_ADJECTIVES))

    def prose(self, sentences: int) -> str:
        return " ".join(self.sentence() for _ in range(sentences))

    def action(self) -> str:
        return f"{self.rng.choice(_ACTIONS)} {self.word()} on {self.word()}"

    # -- JSON schema -----------------------------------------------------------------------
    def value(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, Mapping) or depth > 8:
            return self.prose(1) if depth <= 8 else None
        if "$ref" in schema:
            return self.value(self._resolve(str(schema["$ref"])), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(list(schema["enum"]))
        for combinator in ("anyOf", "oneOf", "allOf"):
            branches = schema.get(combinator)
            if isinstance(branches, list) and branches:
                return self.value(branches[0], name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            concrete = [k for k in kind if k != "null"]
            kind = concrete[0] if concrete and self.rng.random() < 0.85 else "null"
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("number", "integer"):
            return self._number(schema, kind == "integer")
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            if not isinstance(node, Mapping) or part not in node:
                return {}
            node = node[part]
        return node

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required or self.rng.random() < 0.7:
                out[key] = self.value(sub, key, depth + 1)
        return out

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 3)))
        count = min(max(self.rng.randint(1, 3), low), high)
        items = schema.get("items", {"type": "string"})
        return [self.value(items, name, depth + 1) for _ in range(count)]

    def _number(self, schema: Mapping[str, Any], integer: bool) -> int | float:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1 if not integer else 100))
        low, high = float(low), float(max(high, low))
        if integer:
            first = math.ceil(low)
            return self.rng.randint(first, max(math.floor(high), first))
        value = round(self.rng.uniform(low, high), 2)
        return min(max(value, low), high)

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            return f"2026-11-{self.rng.randint(1, 28):02d}T{self.rng.randint(0, 23):02d}:00:00Z"
        lowered = name.lower()
        text = self.action() if "action" in lowered or "step" in lowered else self.prose(
            self.rng.randint(1, 2) if "summary" in lowered or "reason" in lowered else 1
        )
        max_len = schema.get("maxLength")
        if isinstance(max_len, int) and len(text) > max_len:
            cut = text[:max_len]
            text = cut.rsplit(" ", 1)[0] if " " in cut.strip() else cut
        min_len = schema.get("minLength")
        if isinstance(min_len, int) and len(text) < min_len:
            text = (text + " " + self.prose(max(1, min_len // 20))).strip()
            if isinstance(max_len, int):
                text = text[:max_len]
            text = text.ljust(min_len, ".")
        return text


def _full_content(body: Mapping[str, Any], sim_seed: int) -> str:
    rng = random.Random(request_seed(body, sim_seed))
    messages = body.get("messages") or []
    writer = _Writer(rng, prompt_words(messages))
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema", spec) if isinstance(spec, Mapping) else {}
        writer.root = schema if isinstance(schema, Mapping) else {}
        return json.dumps(writer.value(schema), ensure_ascii=False)
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        return json.dumps({"summary": writer.prose(2), "keywords": [writer.word() for _ in range(3)]})
    roll = rng.random()
    if roll < 0.55:
        return writer.prose(rng.randint(2, 5))
    if roll < 0.85:
        block = json.dumps({"summary": writer.prose(1), "risk": rng.choice(_ADJECTIVES)}, indent=2)
        return f"Here is my assessment:\n```json\n{block}\n```"
    last_user = next(
        (message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    return last_user[: rng.randint(200, 1200)] or writer.prose(1)


def expected_answer(
    request_body: Mapping[str, Any], *, n_ctx: int = DEFAULT_SLOT_CONTEXT, sim_seed: int = 0
) -> Answer:
    """The answer the simulator gives to ``request_body`` (no fault applied).

    ``n_ctx`` is the per-slot context: generation also stops when prompt + answer fill it.
    """
    messages = request_body.get("messages") or []
    n_prompt = count_prompt_tokens(messages)
    pieces = tokenize(_full_content(request_body, sim_seed))
    limit = len(pieces)
    max_tokens = request_body.get("max_tokens", request_body.get("max_completion_tokens"))
    if isinstance(max_tokens, int) and max_tokens >= 0:
        limit = min(limit, max_tokens)
    limit = max(0, min(limit, n_ctx - n_prompt))
    finish = "stop" if limit >= len(pieces) else "length"
    return Answer("".join(pieces[:limit]), finish, n_prompt, limit)
