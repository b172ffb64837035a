"""Single-document APIs: index/create, get, delete, update (partial doc, upsert, noop), mget.

Every function runs with the cluster lock held and returns ``(status, body, index)``; the caller
applies the ``refresh`` parameter afterwards (it may need to wait without the lock).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster, IndexState
from .errors import ESError, action_request_validation, illegal_argument
from .jsonbody import unknown_field
from .model import StoredDoc
from .names import auto_id

MAX_ID_BYTES = 512


@dataclass
class WriteOptions:
    """Per-operation parameters shared by the REST endpoints and bulk items."""

    if_seq_no: int | None = None
    if_primary_term: int | None = None
    version: int | None = None
    version_type: str | None = None
    routing: str | None = None
    op_type: str = "index"
    require_alias: bool = False
    pipeline: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> WriteOptions:
        return cls(
            if_seq_no=_int_param(params, "if_seq_no"),
            if_primary_term=_int_param(params, "if_primary_term"),
            version=_int_param(params, "version"),
            version_type=_opt(params.get("version_type")),
            routing=_opt(params.get("routing")),
            op_type=str(params.get("op_type") or "index"),
            require_alias=str(params.get("require_alias", "false")) in ("", "true"),
            pipeline=_opt(params.get("pipeline")),
        )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_param(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        raise illegal_argument(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def _check_routing(idx: IndexState, doc_id: str, routing: str | None) -> None:
    if routing is None and idx.routing_required():
        raise ESError(400, "routing_missing_exception", f"routing is required for [{idx.name}]/[{doc_id}]",
                      index_uuid=idx.uuid, index=idx.name)


def conflict(idx: IndexState, doc_id: str, reason: str) -> ESError:
    return ESError(409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, {reason}",
                   index_uuid=idx.uuid, shard="0", index=idx.name)


def document_missing(idx: IndexState, doc_id: str) -> ESError:
    return ESError(404, "document_missing_exception", f"[{doc_id}]: document missing",
                   index_uuid=idx.uuid, shard="0", index=idx.name)


def validate_write(opts: WriteOptions, doc_id: str | None, *, update: bool = False, delete: bool = False) -> None:
    problems: list[str] = []
    if doc_id is not None and len(doc_id.encode()) > MAX_ID_BYTES:
        problems.append(f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: "
                        f"{len(doc_id.encode())}")
    vtype = (opts.version_type or "internal").lower()
    if vtype not in ("internal", "external", "external_gte", "force"):
        raise illegal_argument(f"No version type match [{opts.version_type}]")
    if opts.op_type not in ("index", "create"):
        raise illegal_argument(f"opType must be 'create' or 'index', found: [{opts.op_type}]")
    if opts.if_seq_no is not None or opts.if_primary_term is not None:
        if opts.if_seq_no is not None and opts.if_seq_no < 0:
            problems.append("sequence numbers must be non negative. got [" + str(opts.if_seq_no) + "].")
        if opts.if_seq_no is not None and not opts.if_primary_term:
            problems.append(f"ifSeqNo is set, but primary term is [{opts.if_primary_term or 0}]")
        if opts.if_primary_term and opts.if_seq_no is None:
            problems.append("ifPrimaryTerm is set, but seqNo is [-2]")
        if vtype != "internal":
            problems.append("compare and write operations can not use versioning")
    if update:
        if opts.version is not None:
            problems.append("internal versioning can not be used for optimistic concurrency control. "
                            "Please use `if_seq_no` and `if_primary_term` instead")
        if vtype != "internal":
            problems.append(f"version type [{vtype.upper()}] is not supported by the update API")
    elif opts.version is not None and vtype == "internal":
        problems.append("internal versioning can not be used for optimistic concurrency control. "
                        "Please use `if_seq_no` and `if_primary_term` instead")
    elif vtype != "internal" and opts.version is None:
        problems.append("an external version is required with version type [" + vtype.upper() + "]")
    if opts.op_type == "create" and vtype != "internal" and not delete:
        problems.append("create operations only support internal versioning. use index instead")
    if problems:
        raise action_request_validation(*problems)


def check_version(idx: IndexState, doc_id: str, current: StoredDoc | None, opts: WriteOptions) -> int:
    """Apply CAS / external version rules; return the version the write will get."""
    if opts.if_seq_no is not None:
        if current is None:
            raise conflict(idx, doc_id, f"required seqNo [{opts.if_seq_no}], primary term "
                                        f"[{opts.if_primary_term}]. but no document was found")
        if current.seq_no != opts.if_seq_no or current.primary_term != opts.if_primary_term:
            raise conflict(idx, doc_id, f"required seqNo [{opts.if_seq_no}], primary term "
                                        f"[{opts.if_primary_term}]. current document has seqNo "
                                        f"[{current.seq_no}] and primary term [{current.primary_term}]")
    last = current.version if current is not None else idx.versions.get(doc_id)
    vtype = (opts.version_type or "internal").lower()
    if vtype in ("external", "external_gte") and opts.version is not None:
        if last is not None:
            if vtype == "external" and last >= opts.version:
                raise conflict(idx, doc_id, f"current version [{last}] is higher or equal to the one provided "
                                            f"[{opts.version}]")
            if vtype == "external_gte" and last > opts.version:
                raise conflict(idx, doc_id, f"current version [{last}] is higher than the one provided "
                                            f"[{opts.version}]")
        return opts.version
    if current is None:
        return last + 1 if last else 1     # a deleted doc's version lives on in its tombstone
    return current.version + 1


def _store(idx: IndexState, doc_id: str, source: dict[str, Any], version: int, routing: str | None,
           *, previous: StoredDoc | None = None) -> StoredDoc:
    """``previous``: the version this one replaces, whose unchanged entries need no re-indexing."""
    reuse = previous.extra.get("parts") if previous is not None else None
    changed = idx.mapping.prepare_document(source, doc_id=doc_id, reuse=reuse)
    indexed, parts = idx.mapping.index_parts(source, validated=not changed, reuse=reuse)
    # A re-indexed doc moves to the end of the insertion order, as a new Lucene doc would.
    order = idx.next_order
    idx.next_order += 1
    doc = StoredDoc(index=idx.name, id=doc_id, source=source, seq_no=idx.next_seq_no(), primary_term=1,
                    version=version, doc_order=order, routing=routing, extra={"indexed": indexed, "parts": parts})
    idx.docs[doc_id] = doc
    idx.versions[doc_id] = version
    return doc


def write_result(idx: IndexState, doc_id: str, result: str, *, version: int,
                 seq_no: int, shards: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_index": idx.name, "_id": doc_id, "_version": version, "result": result,
        "_shards": shards if shards is not None else idx.shard_header(),
        "_seq_no": seq_no, "_primary_term": 1,
    }
    return body


def index_doc(cluster: Cluster, target: str, doc_id: str | None, source: Any,
              opts: WriteOptions) -> tuple[int, dict[str, Any], IndexState]:
    if doc_id is not None and doc_id == "":
        raise illegal_argument("if _id is specified it must not be empty")
    validate_write(opts, doc_id)
    if opts.pipeline not in (None, "", "_none"):
        # No ingest node here: every named pipeline is unknown, as on a cluster without it.
        raise illegal_argument(f"pipeline with id [{opts.pipeline}] does not exist")
    if not isinstance(source, dict):
        raise ESError(400, "document_parsing_exception", "[1:1] failed to parse: source must be an object")
    idx = cluster.write_index(target, require_alias=opts.require_alias)
    if doc_id is None:
        doc_id = auto_id()
        while doc_id in idx.docs:
            doc_id = auto_id()
    _check_routing(idx, doc_id, opts.routing)
    current = idx.lookup(doc_id, opts.routing)
    if opts.op_type == "create" and current is not None:
        raise conflict(idx, doc_id, f"document already exists (current version [{current.version}])")
    version = check_version(idx, doc_id, current, opts)
    doc = _store(idx, doc_id, copy.deepcopy(source), version, opts.routing)
    cluster.mark_written(idx)
    result = "created" if current is None else "updated"
    return (201 if current is None else 200), write_result(idx, doc_id, result, version=version,
                                                            seq_no=doc.seq_no), idx


def delete_doc(cluster: Cluster, target: str, doc_id: str, opts: WriteOptions,
               ) -> tuple[int, dict[str, Any], IndexState]:
    validate_write(opts, doc_id, delete=True)
    idx = cluster.write_index(target, require_alias=opts.require_alias)
    _check_routing(idx, doc_id, opts.routing)
    current = idx.lookup(doc_id, opts.routing)
    version = check_version(idx, doc_id, current, opts)
    seq_no = idx.next_seq_no()
    idx.versions[doc_id] = version
    if current is None:
        return 404, write_result(idx, doc_id, "not_found", version=version, seq_no=seq_no), idx
    del idx.docs[doc_id]
    cluster.mark_written(idx)
    return 200, write_result(idx, doc_id, "deleted", version=version, seq_no=seq_no), idx


def merge_source(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """ES's XContentHelper.update: nested objects merge key by key; anything else replaces."""
    out = dict(base)
    for key, value in changes.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge_source(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


UPDATE_KEYS = {"doc", "upsert", "doc_as_upsert", "detect_noop", "scripted_upsert", "script", "_source"}


def update_doc(cluster: Cluster, target: str, doc_id: str, body: Any,  # noqa: PLR0917 - mirrors the REST call
               opts: WriteOptions, source_filter: Any = None) -> tuple[int, dict[str, Any], IndexState]:
    """Partial update. ``source_filter`` (from ``_source`` params or body) asks for a ``get`` block."""
    validate_write(opts, doc_id, update=True)
    if not isinstance(body, dict):
        raise ESError(400, "x_content_parse_exception", "[1:1] [UpdateRequest] Expected START_OBJECT")
    for key in body:
        if key not in UPDATE_KEYS:
            raise unknown_field("UpdateRequest", key, UPDATE_KEYS)
    script = body.get("script")
    doc = body.get("doc")
    if script is not None and doc is not None:
        raise action_request_validation("can't provide both script and doc")
    if script is not None:
        return _scripted_update(cluster, target, doc_id, body, opts, source_filter)
    if doc is None:
        raise action_request_validation("script or doc is missing")
    if not isinstance(doc, dict):
        raise ESError(400, "x_content_parse_exception", "[1:8] [UpdateRequest] failed to parse field [doc]")
    upsert = body.get("upsert")
    doc_as_upsert = bool(body.get("doc_as_upsert", False))
    detect_noop = body.get("detect_noop", True) is not False
    if source_filter is None and "_source" in body:
        source_filter = body["_source"]
    idx = cluster.write_index(target, require_alias=opts.require_alias)
    _check_routing(idx, doc_id, opts.routing)
    current = idx.lookup(doc_id, opts.routing)
    if current is None:
        if upsert is None and not doc_as_upsert:
            raise document_missing(idx, doc_id)
        check_version(idx, doc_id, None, opts)
        new_source = copy.deepcopy(doc if doc_as_upsert else upsert)
        if not isinstance(new_source, dict):
            raise illegal_argument("upsert must be an object")
        version = check_version(idx, doc_id, None, WriteOptions())
        stored = _store(idx, doc_id, new_source, version, opts.routing)
        cluster.mark_written(idx)
        out = write_result(idx, doc_id, "created", version=version, seq_no=stored.seq_no)
        _add_get(out, stored, source_filter)
        return 201, out, idx
    check_version(idx, doc_id, current, opts)
    merged = merge_source(current.source, doc)
    if detect_noop and merged == current.source:
        out = write_result(idx, doc_id, "noop", version=current.version, seq_no=current.seq_no,
                           shards={"total": 0, "successful": 0, "failed": 0})
        _add_get(out, current, source_filter)
        return 200, out, idx
    stored = _store(idx, doc_id, merged, current.version + 1, opts.routing or current.routing,
                    previous=current)
    cluster.mark_written(idx)
    out = write_result(idx, doc_id, "updated", version=stored.version, seq_no=stored.seq_no)
    _add_get(out, stored, source_filter)
    return 200, out, idx


def _scripted_update(cluster: Cluster, target: str, doc_id: str, body: dict[str, Any],  # noqa: PLR0917
                     opts: WriteOptions, source_filter: Any) -> tuple[int, dict[str, Any], IndexState]:
    """An update by (a subset of) Painless: ``ctx.op`` may turn it into a noop or a delete."""
    from .painless import run_update_script
    if source_filter is None and "_source" in body:
        source_filter = body["_source"]
    idx = cluster.write_index(target, require_alias=opts.require_alias)
    _check_routing(idx, doc_id, opts.routing)
    current = idx.lookup(doc_id, opts.routing)
    if current is None:
        upsert = body.get("upsert")
        if upsert is None:
            raise document_missing(idx, doc_id)
        check_version(idx, doc_id, None, opts)
        new_source = copy.deepcopy(upsert)
        if body.get("scripted_upsert"):
            ctx: dict[str, Any] = {"_source": new_source, "op": "create", "_id": doc_id, "_index": idx.name}
            run_update_script(body["script"], ctx)
            if ctx.get("op") in ("none", "noop"):
                return 200, write_result(idx, doc_id, "noop", version=idx.versions.get(doc_id, 0),
                                         seq_no=-1, shards={"total": 0, "successful": 0, "failed": 0}), idx
            new_source = ctx["_source"]
        stored = _store(idx, doc_id, new_source, check_version(idx, doc_id, None, WriteOptions()), opts.routing)
        cluster.mark_written(idx)
        out = write_result(idx, doc_id, "created", version=stored.version, seq_no=stored.seq_no)
        _add_get(out, stored, source_filter)
        return 201, out, idx
    check_version(idx, doc_id, current, opts)
    ctx = {"_source": copy.deepcopy(current.source), "op": "index", "_id": doc_id, "_index": idx.name,
           "_version": current.version, "_routing": current.routing, "_seq_no": current.seq_no,
           "_primary_term": current.primary_term}
    run_update_script(body["script"], ctx)
    op = ctx.get("op")
    if op in ("none", "noop"):
        out = write_result(idx, doc_id, "noop", version=current.version, seq_no=current.seq_no,
                           shards={"total": 0, "successful": 0, "failed": 0})
        _add_get(out, current, source_filter)
        return 200, out, idx
    if op == "delete":
        return delete_doc(cluster, idx.name, doc_id, WriteOptions(routing=opts.routing or current.routing))
    if not isinstance(ctx.get("_source"), dict):
        raise illegal_argument("ctx._source must stay an object")
    stored = _store(idx, doc_id, ctx["_source"], current.version + 1, opts.routing or current.routing)
    cluster.mark_written(idx)
    out = write_result(idx, doc_id, "updated", version=stored.version, seq_no=stored.seq_no)
    _add_get(out, stored, source_filter)
    return 200, out, idx


def _add_get(out: dict[str, Any], doc: StoredDoc, source_filter: Any) -> None:
    spec = parse_source_spec(source_filter, None, None)
    if spec is None or spec is False:
        return
    get: dict[str, Any] = {"_seq_no": doc.seq_no, "_primary_term": doc.primary_term, "found": True}
    get["_source"] = filter_doc_source(doc.source, spec)
    out["get"] = get


SourceSpec = bool | tuple[list[str] | None, list[str] | None] | None


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [p for p in str(value).split(",") if p]


def parse_source_spec(source: Any, includes: Any, excludes: Any) -> SourceSpec:
    """``_source`` / ``_source_includes`` / ``_source_excludes`` (params or body) → True/False/(inc, exc)/None."""
    inc = _as_list(includes) if includes not in (None, "") else None
    exc = _as_list(excludes) if excludes not in (None, "") else None
    if source is None and inc is None and exc is None:
        return None
    if isinstance(source, bool):
        base: SourceSpec = source
    elif isinstance(source, str):
        if source in ("true", ""):
            base = True
        elif source == "false":
            base = False
        else:
            base = (_as_list(source), None)
    elif isinstance(source, list):
        base = ([str(s) for s in source], None)
    elif isinstance(source, dict):
        i = source.get("includes", source.get("include"))
        e = source.get("excludes", source.get("exclude"))
        base = ((_as_list(i) or None) if i is not None else None, (_as_list(e) or None) if e is not None else None)
    else:
        base = None
    if inc is not None or exc is not None:
        cur_inc = base[0] if isinstance(base, tuple) else None
        cur_exc = base[1] if isinstance(base, tuple) else None
        return (inc if inc is not None else cur_inc, exc if exc is not None else cur_exc)
    return base


def filter_doc_source(source: dict[str, Any], spec: SourceSpec) -> dict[str, Any]:
    if not isinstance(spec, tuple):
        return source
    from .search import filter_source  # A2's engine; imported late so the server starts without it
    return filter_source(source, spec[0], spec[1])


def get_doc(cluster: Cluster, target: str, doc_id: str, params: Mapping[str, Any],
            source_override: Any = None) -> tuple[int, dict[str, Any]]:
    idx = cluster.single_index(target)
    if idx.closed:
        from .expressions import index_closed
        raise index_closed(idx.name, idx.uuid)
    if str(params.get("refresh", "false")) in ("", "true"):
        cluster.refresh_index(idx)
    realtime = str(params.get("realtime", "true")) != "false"
    routing = params.get("routing")
    _check_routing(idx, doc_id, routing)
    doc = idx.lookup(doc_id, None if routing is None else str(routing), realtime=realtime)
    if doc is None:
        return 404, {"_index": idx.name, "_id": doc_id, "found": False}
    wanted_version = _int_param(params, "version")
    if wanted_version is not None and wanted_version != doc.version:
        raise conflict(idx, doc_id, f"current version [{doc.version}] is different than the one provided "
                                    f"[{wanted_version}]")
    body: dict[str, Any] = {"_index": idx.name, "_id": doc_id, "_version": doc.version, "_seq_no": doc.seq_no,
                            "_primary_term": doc.primary_term, "found": True}
    if doc.routing is not None:
        body["_routing"] = doc.routing
    spec = parse_source_spec(source_override if source_override is not None else params.get("_source"),
                             params.get("_source_includes"), params.get("_source_excludes"))
    stored = [f for f in str(params.get("stored_fields") or "").split(",") if f]
    if stored:
        fields = _stored_fields(idx, doc, stored)
        if fields:
            body["fields"] = fields
        if spec is None and "_source" not in stored:
            spec = False
    if spec is not False and _source_enabled(idx):
        body["_source"] = filter_doc_source(doc.source, spec)
    return 200, body


def _source_enabled(idx: IndexState) -> bool:
    meta = idx.mapping.root.get("_source")     # a root parameter: no need to render the whole mapping
    return not (isinstance(meta, dict) and meta.get("enabled") is False)


def _stored_fields(idx: IndexState, doc: StoredDoc, names: list[str]) -> dict[str, list[Any]]:
    """Values of the requested fields that the mapping stores (``store: true``)."""
    from .fieldpath import values_at
    out: dict[str, list[Any]] = {}
    for name in names:
        if name.startswith("_"):
            continue
        fd = idx.mapping.field(name)
        if fd is not None and fd.params.get("store") is True:
            values = values_at(doc.source, name)
            if values:
                out[name] = values
    return out


def get_source(cluster: Cluster, target: str, doc_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    status, body = get_doc(cluster, target, doc_id, params)
    if status == 404:
        raise ESError(404, "resource_not_found_exception", f"Document not found [{body['_index']}]/[{doc_id}]")
    if "_source" not in body:
        raise ESError(404, "resource_not_found_exception", f"Source not found [{body['_index']}]/[{doc_id}]")
    return dict(body["_source"])


def mget(cluster: Cluster, default_index: str | None, body: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise action_request_validation("no documents to get")
    items: list[dict[str, Any]] = []
    if "docs" in body:
        for spec in body["docs"] or []:
            if not isinstance(spec, dict):
                raise ESError(400, "x_content_parse_exception", "[1:10] docs array element should include an object")
            items.append(dict(spec))
    if "ids" in body:
        for doc_id in body["ids"] or []:
            items.append({"_id": doc_id})
    unknown = set(body) - {"docs", "ids"}
    if unknown:
        raise ESError(400, "parsing_exception", f"unknown parameter [{sorted(unknown)[0]}]", line=1, col=2)
    if not items:
        raise action_request_validation("no documents to get")
    problems = []
    for n, item in enumerate(items):
        if "_index" not in item and default_index is None:
            problems.append(f"index is missing for doc {n}")
        if item.get("_id") in (None, ""):
            problems.append(f"id is missing for doc {n}")
    if problems:
        raise action_request_validation(*problems)
    docs = []
    for item in items:
        index = str(item.get("_index", default_index))
        doc_id = str(item["_id"])
        per = dict(params)
        for key in ("routing", "_routing"):
            if key in item:
                per["routing"] = str(item[key])
        if "stored_fields" in item:
            fields = item["stored_fields"]
            per["stored_fields"] = ",".join(fields) if isinstance(fields, list) else str(fields)
        override = item.get("_source")
        try:
            _, got = get_doc(cluster, index, doc_id, per, override)
        except ESError as err:
            got = {"_index": index, "_id": doc_id, "error": err.body()["error"]}
        docs.append(got)
    return {"docs": docs}

