"""``?filter_path=``: keep (or, with ``-``, drop) response fields by dotted patterns with ``*``/``**``."""

from __future__ import annotations

import fnmatch
from typing import Any

_Pattern = list[str]


def _split(expr: str) -> list[_Pattern]:
    return [list(p.strip().split(".")) for p in expr.split(",") if p.strip()]


def _seg_match(seg: str, key: str) -> bool:
    return seg == key or ("*" in seg and fnmatch.fnmatchcase(key, seg))


def _include(value: Any, patterns: list[_Pattern]) -> Any:
    """Return the filtered value, or ``_MISSING`` if nothing of it is kept."""
    if any(not p for p in patterns):
        return value
    if isinstance(value, list):
        kept = [v for v in (_include(item, patterns) for item in value) if v is not _MISSING]
        return kept if kept else _MISSING
    if not isinstance(value, dict):
        return _MISSING
    out: dict[str, Any] = {}
    for key, sub in value.items():
        nexts: list[_Pattern] = []
        for p in patterns:
            head = p[0]
            if head == "**":
                nexts.append(p)        # ** keeps matching deeper
                if len(p) > 1 and _seg_match(p[1], key):
                    nexts.append(p[2:])
                elif len(p) == 1:
                    nexts.append([])
            elif _seg_match(head, key):
                nexts.append(p[1:])
        if not nexts:
            continue
        kept = _include(sub, nexts)
        if kept is not _MISSING:
            out[key] = kept
    return out if out else _MISSING


def _exclude(value: Any, patterns: list[_Pattern]) -> Any:
    if isinstance(value, list):
        return [_exclude(v, patterns) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, sub in value.items():
        nexts: list[_Pattern] = []
        drop = False
        for p in patterns:
            head = p[0]
            if head == "**":
                nexts.append(p)
                if len(p) > 1 and _seg_match(p[1], key):
                    if len(p) == 2:
                        drop = True
                    else:
                        nexts.append(p[2:])
            elif _seg_match(head, key):
                if len(p) == 1:
                    drop = True
                else:
                    nexts.append(p[1:])
        if drop:
            continue
        out[key] = _exclude(sub, nexts) if nexts else sub
    return out


class _Missing:
    pass


_MISSING: Any = _Missing()


def apply(body: Any, expr: str) -> Any:
    """Filter a response body as ES does for ``filter_path``."""
    pats = _split(expr)
    includes = [p for p in pats if not p[0].startswith("-")]
    excludes = [[p[0][1:], *p[1:]] for p in pats if p[0].startswith("-")]
    result = body
    if includes:
        kept = _include(result, includes)
        result = {} if kept is _MISSING else kept
    if excludes:
        result = _exclude(result, excludes)
    return result
