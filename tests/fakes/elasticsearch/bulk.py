"""``_bulk``: NDJSON parsing with ES's BulkRequestParser errors, then per-item execution."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import documents
from .cluster import Cluster
from .errors import ESError, action_request_validation, illegal_argument
from .jsonbody import parse_json, unknown_field

ACTIONS = ("create", "delete", "index", "update")
META_KEYS = {"_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no", "if_primary_term",
             "retry_on_conflict", "pipeline", "_source", "require_alias", "dynamic_templates",
             "list_executed_pipelines", "require_data_stream"}


@dataclass
class BulkItem:
    action: str
    index: str | None
    doc_id: str | None
    meta: dict[str, Any]
    source: Any = None
    source_error: ESError | None = None     # an index/create source that is not valid JSON fails its item only
    extra: dict[str, Any] = field(default_factory=dict)


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    return "VALUE_NULL"


def parse(data: bytes, default_index: str | None) -> list[BulkItem]:
    if not data.strip():
        raise ESError(400, "parse_exception", "request body is required")
    if not data.endswith(b"\n"):
        raise illegal_argument("The bulk request must be terminated by a newline [\\n]")
    lines = data.split(b"\n")[:-1]
    items: list[BulkItem] = []
    i = 0
    while i < len(lines):
        line_no = i + 1
        raw = lines[i].strip(b"\r").strip()
        i += 1
        if not raw:
            continue
        action_obj = parse_json(raw)
        if not isinstance(action_obj, dict):
            raise illegal_argument(f"Malformed action/metadata line [{line_no}], expected START_OBJECT but found "
                                   f"[{_token(action_obj)}]")
        if not action_obj:
            raise illegal_argument(f"Malformed action/metadata line [{line_no}], expected FIELD_NAME but found "
                                   "[END_OBJECT]")
        action, meta = next(iter(action_obj.items()))
        if action not in ACTIONS:
            raise illegal_argument(f"Malformed action/metadata line [{line_no}], expected one of [create, delete, "
                                   f"index, update] but found [{action}]")
        if not isinstance(meta, dict):
            raise illegal_argument(f"Malformed action/metadata line [{line_no}], expected START_OBJECT but found "
                                   f"[{_token(meta)}]")
        if len(action_obj) > 1:
            raise illegal_argument(f"Malformed action/metadata line [{line_no}], expected END_OBJECT but found "
                                   "[FIELD_NAME]")
        for key, value in meta.items():
            if key not in META_KEYS:
                raise illegal_argument(f"Action/metadata line [{line_no}] contains an unknown parameter [{key}]")
            if isinstance(value, (dict, list)) and key not in ("_source", "dynamic_templates"):
                raise illegal_argument(f"Malformed action/metadata line [{line_no}], expected a simple value for "
                                       f"field [{key}] but found [{_token(value)}]")
        index = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        item = BulkItem(action, None if index is None else str(index),
                        None if doc_id is None else str(doc_id), dict(meta))
        if action != "delete":
            if i >= len(lines):
                break   # ES drops an action whose source line is missing
            src_raw = lines[i].strip(b"\r")
            i += 1
            if action == "update":
                item.source = parse_json(src_raw)
                if not isinstance(item.source, dict):
                    raise ESError(400, "x_content_parse_exception", "[1:1] [UpdateRequest] Expected START_OBJECT")
                for key in item.source:
                    if key not in documents.UPDATE_KEYS:
                        raise unknown_field("UpdateRequest", key, documents.UPDATE_KEYS)
            else:
                try:
                    item.source = parse_json(src_raw, doc=True)
                except ESError as err:
                    item.source_error = err
        items.append(item)
    if not items:
        raise action_request_validation("no requests added")
    problems = [p for item in items for p in _validate(item)]
    if problems:
        raise action_request_validation(*problems)
    return items


def _validate(item: BulkItem) -> list[str]:
    problems = []
    if item.index is None:
        problems.append("index is missing")
    if item.action in ("delete", "update") and not item.doc_id:
        problems.append("id is missing")
    if item.action == "update" and isinstance(item.source, dict) and item.source.get("doc") is None \
            and "script" not in item.source:
        problems.append("script or doc is missing")
    return problems


def execute(cluster: Cluster, items: list[BulkItem], params: Mapping[str, str],
            ) -> tuple[dict[str, Any], dict[str, int]]:
    """Run every item; returns the response body and index → refresh generation for ``wait_for``."""
    start = time.monotonic()
    results: list[dict[str, Any]] = []
    touched: dict[str, int] = {}
    errors = False
    for item in items:
        try:
            status, body, idx = _run(cluster, item, params)
            body["status"] = status
            touched.setdefault(idx.name, idx.refresh_gen)
        except ESError as err:
            errors = True
            body = {"_index": _error_index(cluster, item, err), "_id": item.doc_id, "status": err.status,
                    "error": err.error_object()}
        results.append({item.action: body})
    took = int((time.monotonic() - start) * 1000)
    return {"errors": errors, "took": took, "items": results}, touched


def _error_index(cluster: Cluster, item: BulkItem, err: ESError) -> str | None:
    index = err.extra.get("index")
    if isinstance(index, str) and index in cluster.indices:
        return index
    return item.index


def _run(cluster: Cluster, item: BulkItem, params: Mapping[str, str]) -> tuple[int, dict[str, Any], Any]:
    meta = item.meta
    opts = documents.WriteOptions.from_params({
        "if_seq_no": meta.get("if_seq_no"), "if_primary_term": meta.get("if_primary_term"),
        "version": meta.get("version"), "version_type": meta.get("version_type"),
        "routing": meta.get("routing", params.get("routing")),
        "op_type": "create" if item.action == "create" else str(meta.get("op_type") or "index"),
        "require_alias": meta.get("require_alias", params.get("require_alias", "false")),
        "pipeline": meta.get("pipeline", params.get("pipeline")),
    })
    assert item.index is not None
    if item.action in ("index", "create"):
        if item.source_error is not None:
            cluster.write_index(item.index, require_alias=opts.require_alias)
            raise item.source_error
        return documents.index_doc(cluster, item.index, item.doc_id, item.source, opts)
    assert item.doc_id is not None
    if item.action == "delete":
        return documents.delete_doc(cluster, item.index, item.doc_id, opts)
    source_filter = meta.get("_source", params.get("_source"))
    if source_filter is None and (params.get("_source_includes") or params.get("_source_excludes")):
        source_filter = {"includes": params.get("_source_includes", "").split(",") if params.get(
            "_source_includes") else None, "excludes": params.get("_source_excludes", "").split(",") if params.get(
            "_source_excludes") else None}
    return documents.update_doc(cluster, item.index, item.doc_id, item.source, opts, source_filter)

