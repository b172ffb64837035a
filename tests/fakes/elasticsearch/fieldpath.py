"""Addressing fields inside a `_source`: flat dotted keys, nested objects and any mix of both."""

from __future__ import annotations

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
