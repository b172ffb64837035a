"""Shared data types between the cluster state (``cluster.py``) and the search engine (``search.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StoredDoc:
    """One document as a shard stores it."""

    index: str
    id: str
    source: dict[str, Any]
    seq_no: int
    primary_term: int
    version: int
    # Position in the index's insertion order: the stable tiebreaker behind `_doc` and `_shard_doc`.
    doc_order: int = 0
    routing: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
