"""Turn a model's reply into a validated :class:`Assessment`, or say exactly why it cannot be.

Model output is untrusted text: it may ignore the schema, wrap JSON in prose or a code fence, run out of
tokens, or carry markup and control characters meant for whoever reads it in Kibana. Only values that fit
our schema, cleaned to plain text, come out of here.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from worker.alerts import fields
from worker.alerts.fields import RiskLevel
from worker.assessing.prompt import ANSWER_SCHEMA

_PROPS: Final = ANSWER_SCHEMA["properties"]
SUMMARY_MAX: Final[int] = _PROPS["summary"]["maxLength"]  # what the model may write
# What is stored: the model's summary plus what the guards add (a warning, the alert's own facts).
STORED_SUMMARY_MAX: Final = 600
ACTION_MAX: Final[int] = _PROPS["actions"]["items"]["maxLength"]
ACTIONS_MAX: Final[int] = _PROPS["actions"]["maxItems"]

_FENCE: Final = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TAG: Final = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_MD_LINK: Final = re.compile(r"!?\[([^\]]{0,200})\]\([^)]{0,500}\)")
# Bidi overrides and zero-width characters can make text read differently from what it says.
_INVISIBLE: Final = dict.fromkeys(
    [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF], None
)


class AnswerError(Exception):
    """The reply cannot be used; ``kind`` is a short stable code for filtering, the message says why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True)
class Assessment:
    """A validated answer, named as its ``lme.ai.*`` fields (the model's keys are shorter, see the schema)."""

    summary: str
    risk_level: str
    confidence: float
    recommended_actions: list[str]
    # Set by worker.assessing.guards: why the alert looks like it addresses the model, and which guards changed
    # the answer.
    injection_reasons: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()

    def as_fields(self) -> dict[str, Any]:
        # Prompts v1 and v2 also wrote what_happened: clear it so a re-assessment leaves no stale text behind.
        return {"summary": self.summary, "risk_level": self.risk_level, "confidence": self.confidence,
                "recommended_actions": list(self.recommended_actions), "what_happened": None}

    def guard_fields(self) -> dict[str, Any]:
        """The guards' record (``injection_reasons``, ``guards``), for the fields the mapping has."""
        record = {"injection_reasons": list(self.injection_reasons), "guards": list(self.guards)}
        return {k: v for k, v in record.items() if k in fields.AI_PROPERTIES}


def clean_text(value: str, limit: int) -> str:
    """Plain, single-spaced text of at most ``limit`` characters: no control characters or markup."""
    text = unicodedata.normalize("NFC", value.encode("utf-8", "replace").decode("utf-8"))
    text = _MD_LINK.sub(r"\1", _TAG.sub("", text)).translate(_INVISIBLE)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _json_candidates(content: str) -> list[str]:
    stripped = content.strip()
    candidates = [stripped]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(content)]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    return candidates


def _load_object(content: str) -> dict[str, Any]:
    for candidate in _json_candidates(content):
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    raise AnswerError("not_json", f"the reply holds no JSON object: {clean_text(content, 120)!r}")


def _string(answer: dict[str, Any], key: str, limit: int) -> str:
    value = answer.get(key)
    if not isinstance(value, str):
        raise AnswerError("schema", f"'{key}' must be a string, got {type(value).__name__}")
    text = clean_text(value, limit)
    if not text:
        raise AnswerError("schema", f"'{key}' is empty")
    return text


def _risk(answer: dict[str, Any]) -> str:
    value = answer.get("risk")
    if isinstance(value, str) and value.strip().lower() in RiskLevel.__members__:
        return value.strip().lower()
    allowed = ", ".join(RiskLevel.__members__)
    raise AnswerError("schema", f"'risk' must be one of {allowed}, got {clean_text(str(value), 40)!r}")


def _confidence(answer: dict[str, Any]) -> float:
    """The confidence as a fraction: the schema asks for a whole percent; a fraction or "85%" is read too."""
    value = answer.get("confidence")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # noqa: PLR0124 NaN
        raise AnswerError("schema", f"'confidence' must be a percent from 0 to 100, got {clean_text(repr(value), 40)}")
    if isinstance(value, int) or 1 < value <= 100:
        value = value / 100  # a percent, as asked (a float of at most 1 is read as a fraction)
    if not 0 <= value <= 1:
        raise AnswerError("schema", f"'confidence' must be from 0 to 100, got {value * 100:g}")
    return round(float(value), 3)


def _actions(answer: dict[str, Any]) -> list[str]:
    value = answer.get("actions")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise AnswerError("schema", "'actions' must be a list of strings")
    actions = [clean_text(item, ACTION_MAX) for item in value if isinstance(item, str)]
    actions = [a for a in actions if a][:ACTIONS_MAX]
    if not actions:
        raise AnswerError("schema", "'actions' holds no usable action")
    return actions


def parse(content: str | None, finish_reason: str | None = None) -> Assessment:
    """Validate a reply's content; raise :class:`AnswerError` when it cannot be used whole."""
    if finish_reason == "length":
        raise AnswerError("truncated", "the model ran out of tokens before finishing its answer (max_tokens)")
    if not content or not content.strip():
        raise AnswerError("empty", "the model returned an empty answer")
    answer = _load_object(content)
    missing = [key for key in ANSWER_SCHEMA["required"] if key not in answer]
    if missing:
        raise AnswerError("schema", f"the answer lacks {', '.join(missing)}")
    return Assessment(
        summary=_string(answer, "summary", SUMMARY_MAX),
        risk_level=_risk(answer),
        confidence=_confidence(answer),
        recommended_actions=_actions(answer),
    )
