"""The `fields` option of a search: values from `_source`, parsed and formatted by the mapping.

Fields inside `nested` objects come back grouped per nested object, keyed relative to it, as ES does.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from .analysis import analyze
from .datemath import DateFormat
from .errors import parsing_exception
from .fieldpath import values_at
from .fieldtypes import DATE_TYPES, KEYWORD_TYPES, OBJECT_VALUED, FieldDef, MalformedValue, shortest_float
from .mapping import IndexMapping


class FieldsFormatError(ValueError):
    """A `format` on a field type that has none (ES: illegal_argument_exception)."""


@dataclass
class FieldPattern:
    pattern: str
    format: str | None = None
    include_unmapped: bool = False

    def matches(self, path: str) -> bool:
        return fnmatch.fnmatchcase(path, self.pattern)


def parse_field_patterns(value: Any) -> list[FieldPattern]:
    out: list[FieldPattern] = []
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, str):
            out.append(FieldPattern(entry))
        elif isinstance(entry, dict) and isinstance(entry.get("field"), str):
            fmt = entry.get("format")
            if fmt is not None and not isinstance(fmt, str):
                raise parsing_exception("[fields] failed to parse field [format]")
            out.append(FieldPattern(entry["field"], fmt, bool(entry.get("include_unmapped"))))
    return out


class FieldFetcher:
    """Collects `fields` for documents of one index."""

    def __init__(self, mapping: IndexMapping, patterns: list[FieldPattern]) -> None:
        self.mapping = mapping
        self.patterns = patterns
        self.fields = mapping.fields()
        objects = mapping.objects()
        self.nested = sorted(p for p, spec in objects.items() if spec.get("type") == "nested")
        self.disabled = [p for p, spec in objects.items() if not spec.get("enabled", True)]
        for pat in patterns:
            if pat.format is None:
                continue
            for path, fd in self.fields.items():
                if pat.matches(path) and fd.type not in DATE_TYPES:
                    raise FieldsFormatError(f"Field [{path}] of type [{fd.type}] doesn't support formats.")

    def fetch(self, source: dict[str, Any]) -> dict[str, Any]:
        return self._scope(source, "", None)

    def _owner(self, path: str) -> str | None:
        """The innermost nested object path that contains ``path``."""
        owner = None
        for n in self.nested:
            if path.startswith(n + "."):
                owner = n
        return owner

    def _scope(self, obj: dict[str, Any], prefix: str, scope: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, fd in self.fields.items():
            if not path.startswith(prefix) or self._owner(path) != scope:
                continue
            # When several entries name a field, the last one (e.g. with a `format`) wins.
            pat = next((p for p in reversed(self.patterns) if p.matches(path)), None)
            if pat is None:
                continue
            values = self._values(obj, path[len(prefix):], fd, pat)
            if values:
                out[path[len(prefix):]] = values
        if any(p.include_unmapped for p in self.patterns):
            self._unmapped(obj, prefix, scope, out)
        for n in self.nested:
            if not n.startswith(prefix) or n == scope or self._owner(n) != scope:
                continue
            items = [v for v in values_at(obj, n[len(prefix):]) if isinstance(v, dict)]
            groups = [g for g in (self._scope(item, n + ".", n) for item in items) if g]
            if groups:
                out[n[len(prefix):]] = groups
        return out

    def _values(self, obj: dict[str, Any], rel: str, fd: FieldDef, pat: FieldPattern) -> list[Any]:
        parent, _, sub = fd.path.rpartition(".")
        parent_fd = self.fields.get(parent)
        if parent_fd is not None and sub in parent_fd.params.get("_multi", ()):
            rel = rel.rpartition(".")[0]  # a multi-field shows its parent's values
        raw = values_at(obj, rel)
        null_value = fd.params.get("null_value")
        if null_value is not None:
            raw = [null_value if v is None else v for v in raw]
        return [v for v in (_format(fd, r, pat.format) for r in raw if r is not None) if v is not _SKIP]

    def _unmapped(self, obj: dict[str, Any], prefix: str, scope: str | None, out: dict[str, Any]) -> None:
        for rel, value in _leaves(obj, ""):
            full = prefix + rel
            if full in self.fields or value is None:
                continue
            if self._owner(full) != scope:
                continue
            if self._under_mapped_leaf(full):
                continue
            if any(p.include_unmapped and p.matches(full) for p in self.patterns):
                out.setdefault(rel, []).append(value)

    def _under_mapped_leaf(self, path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:i]) in self.fields for i in range(1, len(parts)))


_SKIP = object()


def _leaves(node: Any, prefix: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_leaves(value, f"{prefix}{key}."))
    elif isinstance(node, list):
        scalars = [v for v in node if not isinstance(v, dict | list)]
        nested = [v for v in node if isinstance(v, dict | list)]
        for v in nested:
            out.extend(_leaves(v, prefix))
        out.extend((prefix[:-1], v) for v in scalars)
    else:
        out.append((prefix[:-1], node))
    return out


def _format(fd: FieldDef, value: Any, fmt: str | None) -> Any:
    t = fd.type
    if t == "token_count":
        if fd.params.get("doc_values") is False:
            return _SKIP
        return len(analyze(str(value), fd.params.get("analyzer")))
    if fd.is_text or t in KEYWORD_TYPES:
        if isinstance(value, dict | list):
            return value if t == "flattened" else _SKIP
        text = "true" if value is True else "false" if value is False else str(value)
        above = fd.params.get("ignore_above")
        return _SKIP if above is not None and len(text) > int(above) else text
    if t in OBJECT_VALUED or fd.type in ("alias",):
        return value
    try:
        coerced = fd.coerce(value)
    except MalformedValue:
        return _SKIP
    if t in DATE_TYPES:
        return fd.format_date(coerced, DateFormat(fmt) if fmt else None)
    if t in ("float", "half_float"):
        return shortest_float(coerced, t)
    return coerced
