"""Runtime fields: values computed from `_source` at search time (mapping `runtime` or `runtime_mappings`).

Painless is not available: a script is understood only in the common shapes
`emit(doc['f'].value)` and `emit(params._source['f'])`; without a script the field reads its own name.
"""

from __future__ import annotations

import re
from typing import Any

from .fieldpath import values_at
from .fieldtypes import FieldDef, MalformedValue
from .mapping import IndexedFields, IndexMapping

_SOURCE_REF = re.compile(r"""(?:doc|params\._source|params\[['"]_source['"]\])\s*\[\s*['"]([^'"]+)['"]\s*\]""")


def runtime_fields(mapping: IndexMapping) -> list[FieldDef]:
    return [fd for fd in mapping.fields().values() if fd.params.get("_runtime")]


def with_runtime_values(indexed: IndexedFields, source: dict[str, Any], fields: list[FieldDef]) -> IndexedFields:
    """``indexed`` plus the values of the runtime ``fields`` for this document."""
    out = dict(indexed)
    for fd in fields:
        values: list[Any] = []
        for raw in values_at(source, _source_path(fd)):
            try:
                values.extend(fd.index_values(raw))
            except MalformedValue:
                continue
        if values:
            out[fd.path] = values
        else:
            out.pop(fd.path, None)
    return out


def _source_path(fd: FieldDef) -> str:
    script = fd.params.get("script")
    text = script.get("source") if isinstance(script, dict) else script
    if isinstance(text, str):
        found = _SOURCE_REF.search(text)
        if found:
            return found.group(1)
    return fd.path
