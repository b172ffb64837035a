"""`_source` filtering with include/exclude wildcard patterns over flat and nested keys."""

from __future__ import annotations

import fnmatch
from typing import Any


def _matches(path: str, patterns: list[str]) -> bool:
    # A pattern naming an object selects everything under it.
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(path, p + ".*") for p in patterns)


def _may_contain(path: str, patterns: list[str]) -> bool:
    """Could some pattern select a field below the object at ``path``?"""
    prefix = path + "."
    for p in patterns:
        head = p.split("*", 1)[0]
        if prefix.startswith(head) or head.startswith(prefix):
            return True
    return False


def filter_source(source: dict[str, Any], includes: list[str] | None, excludes: list[str] | None) -> dict[str, Any]:
    """The part of ``source`` ES returns for these `_source` includes/excludes."""
    inc = [p for p in (includes or []) if p]
    exc = [p for p in (excludes or []) if p]
    if not inc and not exc:
        return source
    return _filter_obj(source, "", inc, exc)


def _filter_obj(obj: dict[str, Any], prefix: str, inc: list[str], exc: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path = prefix + key
        kept = _filter_value(value, path, inc, exc)
        if kept is not _DROP:
            out[key] = kept
    return out


_DROP = object()


def _filter_value(value: Any, path: str, inc: list[str], exc: list[str]) -> Any:
    if exc and _matches(path, exc):
        return _DROP
    included = not inc or _matches(path, inc)
    if isinstance(value, dict):
        if included or _may_contain(path, inc):
            inner = _filter_obj(value, path + ".", inc if not included else [], exc)
            if inner or (included and not value):
                return inner
            return inner if included else _DROP
        return _DROP
    if isinstance(value, list):
        if not included and not _may_contain(path, inc):
            return _DROP
        items = []
        for item in value:
            if isinstance(item, dict):
                sub = _filter_obj(item, path + ".", inc if not included else [], exc)
                if sub or (included and not item):
                    items.append(sub)
            elif included:
                items.append(item)
        if not items and not included:
            return _DROP
        return items
    return value if included else _DROP


def parse_source_option(value: Any) -> tuple[bool, list[str] | None, list[str] | None]:
    """`_source` request option → (fetch, includes, excludes)."""
    if value is None or value is True:
        return True, None, None
    if value is False:
        return False, None, None
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true", None, None
        return True, [s for s in value.split(",") if s], None
    if isinstance(value, list):
        return True, [str(v) for v in value], None
    if isinstance(value, dict):
        inc = value.get("includes", value.get("include"))
        exc = value.get("excludes", value.get("exclude"))
        return True, _as_list(inc), _as_list(exc)
    return True, None, None


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
