"""Addressing fields inside a `_source`: flat dotted keys, nested objects and any mix of both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def values_at(source: Any, path: str) -> list[Any]:
    """Every value the field ``path`` has in ``source``, arrays flattened (objects included as-is)."""
    out: list[Any] = []
    _collect(source, path, out)
    return out


def _collect(node: Any, rest: str, out: list[Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, rest, out)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == rest:
            _flatten_into(value, out)
        elif rest.startswith(key + "."):
            _collect(value, rest[len(key) + 1 :], out)


def _flatten_into(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten_into(item, out)
    else:
        out.append(value)


def walk_leaves(
    source: dict[str, Any], is_leaf: Callable[[str], bool] | None = None, prefix: str = ""
) -> Iterator[tuple[str, Any]]:
    """Yield ``(full_path, value)`` for every leaf value, arrays flattened.

    ``is_leaf(path)`` lets the caller keep an object value whole (flattened, geo_point fields).
    """
    for key, value in source.items():
        path = f"{prefix}{key}"
        yield from _walk_value(path, value, is_leaf)


def _walk_value(path: str, value: Any, is_leaf: Callable[[str], bool] | None) -> Iterator[tuple[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _walk_value(path, item, is_leaf)
    elif isinstance(value, dict) and not (is_leaf is not None and is_leaf(path)):
        yield from walk_leaves(value, is_leaf, path + ".")
    else:
        yield path, value


def has_path(source: dict[str, Any], path: str) -> bool:
    """True when ``path`` names a value or an object inside ``source``."""
    return bool(values_at(source, path))
