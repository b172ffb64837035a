"""`_source` filtering with include/exclude wildcard patterns over flat and nested keys."""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any

# Distinct paths remembered per pattern list; a bound keeps a long-lived server's memory flat.
_MEMO_LIMIT = 20_000


_MATCH = 1        # a pattern selects the path (and so everything below it)
_BELOW = 2        # some pattern could select a field below the path


class _Patterns:
    """One include or exclude list, compiled once: a search filters every hit with the same list, and
    matching each path against each pattern one by one dominated the cost of a search."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.empty = not patterns
        # A pattern naming an object selects everything under it, hence each pattern and pattern + ".*".
        alternatives = [fnmatch.translate(q) for p in patterns for q in (p, p + ".*")]
        self._regex = re.compile("|".join(f"(?:{a})" for a in alternatives)) if alternatives else None
        self._heads = tuple(p.split("*", 1)[0] for p in patterns)
        self._verdicts: dict[str, int] = {}

    def verdict(self, path: str) -> int:
        """``_MATCH`` and ``_BELOW`` bits for ``path`` (hits share their paths: each is worked out once)."""
        found = self._verdicts.get(path)
        if found is None:
            found = 0
            if self._regex is not None and self._regex.match(path) is not None:
                found |= _MATCH
            prefix = path + "."
            if any(prefix.startswith(head) or head.startswith(prefix) for head in self._heads):
                found |= _BELOW
            if len(self._verdicts) >= _MEMO_LIMIT:
                self._verdicts.clear()
            self._verdicts[path] = found
        return found


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> _Patterns:
    return _Patterns(patterns)


_NONE = _Patterns(())


def filter_source(source: dict[str, Any], includes: list[str] | None, excludes: list[str] | None) -> dict[str, Any]:
    """The part of ``source`` ES returns for these `_source` includes/excludes."""
    inc = tuple(p for p in (includes or []) if p)
    exc = tuple(p for p in (excludes or []) if p)
    if not inc and not exc:
        return source
    return _filter_obj(source, "", _compiled(inc), _compiled(exc))


def _filter_obj(obj: dict[str, Any], prefix: str, inc: _Patterns, exc: _Patterns) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path = prefix + key
        kept = _filter_value(value, path, inc, exc)
        if kept is not _DROP:
            out[key] = kept
    return out


_DROP = object()


def _filter_value(value: Any, path: str, inc: _Patterns, exc: _Patterns) -> Any:
    if not exc.empty and exc.verdict(path) & _MATCH:
        return _DROP
    if inc.empty:
        included, below = True, False
    else:
        found = inc.verdict(path)
        included, below = bool(found & _MATCH), bool(found & _BELOW)
    if included and exc.empty:
        # Walking it would only rebuild an equal copy (empty objects included): the JSON is the same.
        return value
    if isinstance(value, dict):
        if included or below:
            inner = _filter_obj(value, path + ".", inc if not included else _NONE, exc)
            if inner or (included and not value):
                return inner
            return inner if included else _DROP
        return _DROP
    if isinstance(value, list):
        if not included and not below:
            return _DROP
        items = []
        for item in value:
            if isinstance(item, dict):
                sub = _filter_obj(item, path + ".", inc if not included else _NONE, exc)
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
