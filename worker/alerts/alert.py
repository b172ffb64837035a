"""Read fields of a Kibana alert ``_source``, whose keys mix flat dotted and nested forms.

Kibana writes ``"kibana.alert.rule.name"`` as one flat key but copies ECS fields as nested objects
(``{"host": {"name": ...}}``), and older alerts mix both (``{"kibana.alert": {"rule.name": ...}}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def values(source: Any, path: str) -> list[Any]:
    """Every value at ``path`` in ``source``, in document order; arrays are flattened."""
    found: list[Any] = []
    for value in _walk(source, path.split(".")):
        if isinstance(value, list):
            found.extend(_flatten(value))
        else:
            found.append(value)
    return found


def first(source: Any, path: str) -> Any:
    """The first value at ``path``, or None."""
    for value in values(source, path):
        if value is not None:
            return value
    return None


def _walk(node: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, parts)
        return
    if not isinstance(node, dict):
        return
    # Try every split of the remaining path into "a key of this object" + "the rest".
    for cut in range(1, len(parts) + 1):
        key = ".".join(parts[:cut])
        if key in node:
            yield from _walk(node[key], parts[cut:])


def _flatten(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def key_form(source: dict[str, Any], path: str) -> tuple[str, ...] | None:
    """The key sequence under which ``path`` is stored in ``source`` (e.g. one flat key), if present."""
    return _find_keys(source, path.split("."))


def _find_keys(node: Any, parts: list[str]) -> tuple[str, ...] | None:
    if not parts:
        return ()
    if not isinstance(node, dict):
        return None
    for cut in range(len(parts), 0, -1):
        key = ".".join(parts[:cut])
        if key in node:
            rest = _find_keys(node[key], parts[cut:])
            if rest is not None:
                return (key, *rest)
    return None
