"""JSON request bodies parsed with Jackson-like errors (positions, duplicate keys) as ES reports them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .errors import ESError
from .textdist import edit_distance


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _describe(text: str, err: json.JSONDecodeError) -> str:
    pos = err.pos
    if pos >= len(text):
        return "Unexpected end-of-input"
    ch = text[pos]
    return f"Unexpected character ('{ch}' (code {ord(ch)})): {err.msg.lower()}"


def parse_json(data: bytes | str, *, doc: bool = False) -> Any:
    """Parse one JSON value. ``doc``: a document source, whose errors are ``document_parsing_exception``."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except _Duplicate as dup:
        reason = f"[1:1] Duplicate field '{dup.key}'"
        if doc:
            raise ESError(400, "document_parsing_exception", f"[1:1] failed to parse: Duplicate field '{dup.key}'"
                          ) from None
        raise ESError(400, "x_content_parse_exception", reason) from None
    except json.JSONDecodeError as err:
        where = f"[{err.lineno}:{err.colno}]"
        if doc:
            raise ESError(400, "document_parsing_exception",
                          f"{where} failed to parse: {_describe(text, err)}") from None
        raise ESError(400, "x_content_parse_exception", f"{where} {_describe(text, err)}") from None


def _similarity(a: str, b: str) -> float:
    """Lucene's LevenshteinDistance: 1 - edits / max(len)."""
    return 1.0 - edit_distance(a, b) / (max(len(a), len(b)) or 1)


def unknown_field(parser: str, key: str, known: Iterable[str], where: str = "[1:2]") -> ESError:
    """ES's ObjectParser error for an unknown field, with its "did you mean" suggestions."""
    scored = sorted(((s, k) for k in known if (s := _similarity(key, k)) > 0.5), key=lambda t: (-t[0], t[1]))
    reason = f"{where} [{parser}] unknown field [{key}]"
    if len(scored) == 1:
        reason += f" did you mean [{scored[0][1]}]?"
    elif scored:
        reason += f" did you mean any of [{', '.join(k for _, k in scored)}]?"
    return ESError(400, "x_content_parse_exception", reason)
