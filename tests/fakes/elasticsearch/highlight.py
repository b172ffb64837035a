"""A small `highlight`: marks the query's terms in `_source` values of text and keyword fields.

Fragments are whole values (or, for long text, the sentences that contain a match); offsets, scoring
of fragments and the fvh/plain differences of ES are not modelled.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from .analysis import WORD_PATTERN
from .errors import parsing_exception
from .fieldpath import values_at
from .fieldtypes import KEYWORD_TYPES, FieldDef
from .mapping import IndexMapping

TermTest = Callable[[str], bool]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def highlight(spec: dict[str, Any], terms: list[tuple[str, TermTest]], source: dict[str, Any],
              mapping: IndexMapping) -> dict[str, list[str]]:
    """The `highlight` object of one hit (empty when nothing matched)."""
    out: dict[str, list[str]] = {}
    for pattern, opts in _field_specs(spec.get("fields")):
        merged = {**spec, **opts}
        pre = _tags(merged.get("pre_tags"), "<em>")
        post = _tags(merged.get("post_tags"), "</em>")
        size = _int(merged.get("fragment_size"), 100, "fragment_size")
        count = _int(merged.get("number_of_fragments"), 5, "number_of_fragments")
        require_match = merged.get("require_field_match", True) not in (False, "false")
        for path, fd in mapping.fields().items():
            if path in out or not fnmatch.fnmatchcase(path, pattern):
                continue
            if not (fd.is_text or fd.type in KEYWORD_TYPES):
                continue
            tests = [t for field_pattern, t in terms
                     if not require_match or fnmatch.fnmatchcase(path, field_pattern)]
            if not tests:
                continue
            fragments = _fragments(_values(source, path, mapping), fd, tests, (pre, post), (size, count))
            if fragments:
                out[path] = fragments
    return out


def _int(value: Any, default: int, name: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise parsing_exception(f"[highlight] failed to parse field [{name}]") from exc


def _field_specs(fields: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(fields, dict):
        return [(str(k), v if isinstance(v, dict) else {}) for k, v in fields.items()]
    if isinstance(fields, list):
        return [(str(k), v if isinstance(v, dict) else {}) for item in fields if isinstance(item, dict)
                for k, v in item.items()]
    return []


def _tags(value: Any, default: str) -> str:
    if isinstance(value, list) and value:
        return str(value[0])
    return default


def _values(source: dict[str, Any], path: str, mapping: IndexMapping) -> list[str]:
    parent, _, sub = path.rpartition(".")
    parent_fd = mapping.fields().get(parent)
    if parent_fd is not None and sub in parent_fd.params.get("_multi", ()):
        path = parent  # a multi-field highlights its parent's text
    return [v if isinstance(v, str) else str(v) for v in values_at(source, path)
            if v is not None and not isinstance(v, dict | list | bool)]


def _fragments(values: list[str], fd: FieldDef, tests: list[TermTest], tags: tuple[str, str],
               limits: tuple[int, int]) -> list[str]:
    pre, post = tags
    size, count = limits
    out: list[str] = []
    for value in values:
        if not fd.is_text:
            probe = value.lower() if fd.params.get("normalizer") else value
            if any(t(probe) for t in tests):
                out.append(f"{pre}{value}{post}")
            continue
        marked, hit = _mark(value, tests, pre, post)
        if not hit:
            continue
        if count == 0 or len(value) <= size:
            out.append(marked)
        else:
            out.extend(m for m, h in (_mark(s, tests, pre, post) for s in _SENTENCE.split(value)) if h)
    return out if count == 0 else out[:count]


def _mark(text: str, tests: list[TermTest], pre: str, post: str) -> tuple[str, bool]:
    parts: list[str] = []
    last, hit = 0, False
    for m in WORD_PATTERN.finditer(text):
        if any(t(m.group(0).lower()) for t in tests):
            parts += [text[last:m.start()], pre, m.group(0), post]
            last, hit = m.end(), True
    parts.append(text[last:])
    return "".join(parts), hit
