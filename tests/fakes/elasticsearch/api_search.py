"""Search, count, msearch and point-in-time endpoints: resolve indices, pick the snapshot, call the engine."""

from __future__ import annotations

import time
from typing import Any

from . import settings as settings_mod
from .cluster import Cluster
from .errors import ESError, action_request_validation, illegal_argument
from .expressions import IndicesOptions
from .jsonbody import parse_json
from .mapping import IndexMapping
from .model import StoredDoc
from .routing import Request, Response, Router

SEARCH_OPTIONS = IndicesOptions(forbid_closed=True)
BOOL_PARAMS = ("seq_no_primary_term", "version", "explain", "track_scores")
INT_PARAMS = ("size", "from", "terminate_after")


def register(r: Router, cluster: Cluster) -> SearchHandlers:
    h = SearchHandlers(cluster)
    r.add("GET,POST", "/_search", h.search)
    r.add("GET,POST", "/{index}/_search", h.search)
    r.add("GET,POST", "/_count", h.count)
    r.add("GET,POST", "/{index}/_count", h.count)
    r.add("GET,POST", "/_msearch", h.msearch)
    r.add("GET,POST", "/{index}/_msearch", h.msearch)
    r.add("POST", "/{index}/_pit", h.open_pit)
    r.add("GET,POST", "/_search/scroll", h.scroll)
    r.add("GET,POST", "/_search/scroll/{scroll_id}", h.scroll)
    r.add("DELETE", "/_search/scroll", h.clear_scroll)
    r.add("DELETE", "/_search/scroll/{scroll_id}", h.clear_scroll)
    r.add("DELETE", "/_pit", h.close_pit)
    return h


def _bool(value: str, name: str) -> bool:
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise illegal_argument(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise illegal_argument(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def _q_query(params: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"query": params["q"]}
    if "df" in params:
        spec["default_field"] = params["df"]
    if "default_operator" in params:
        spec["default_operator"] = params["default_operator"]
    if "analyzer" in params:
        spec["analyzer"] = params["analyzer"]
    if "lenient" in params:
        spec["lenient"] = _bool(params["lenient"], "lenient")
    return {"query_string": spec}


def apply_url_params(body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """Translate URL parameters into the search body, as RestSearchAction does (URL wins)."""
    out = dict(body)
    if "q" in params:
        out["query"] = _q_query(params)
    for name in INT_PARAMS:
        if name in params:
            out[name] = _int(params[name], name)
    if "size" in out and out["size"] < 0:
        if out["size"] != -1:
            raise illegal_argument(f"[size] parameter cannot be negative, found [{out['size']}]")
        del out["size"]     # -1 is the deprecated spelling of "not set"
    if "terminate_after" in out and out["terminate_after"] < 0:
        raise illegal_argument("terminateAfter must be > 0")
    for name in BOOL_PARAMS:
        if name in params:
            out[name] = _bool(params[name], name)
    if "sort" in params:
        sorts: list[Any] = []
        for part in params["sort"].split(","):
            field, sep, order = part.partition(":")
            sorts.append({field: order} if sep else field)
        out["sort"] = sorts
    if "track_total_hits" in params:
        raw = params["track_total_hits"]
        out["track_total_hits"] = _bool(raw, "track_total_hits") if raw in ("", "true", "false") \
            else _int(raw, "track_total_hits")
    src = params.get("_source")
    inc = params.get("_source_includes")
    exc = params.get("_source_excludes")
    if src is not None or inc is not None or exc is not None:
        if src in ("true", "false", "") and inc is None and exc is None:
            out["_source"] = src != "false"
        else:
            spec: dict[str, Any] = {}
            includes = inc if inc is not None else (src if src not in (None, "true", "false", "") else None)
            if includes:
                spec["includes"] = includes.split(",")
            if exc:
                spec["excludes"] = exc.split(",")
            out["_source"] = spec
    if "stored_fields" in params:
        out["stored_fields"] = params["stored_fields"].split(",")
    if "docvalue_fields" in params:
        out["docvalue_fields"] = params["docvalue_fields"].split(",")
    return out


def check_total_hits_as_int(body: dict[str, Any], params: dict[str, str]) -> None:
    if params.get("rest_total_hits_as_int") not in ("", "true"):
        return
    tth = body.get("track_total_hits", True)
    if tth is not True:
        shown = str(tth).lower() if isinstance(tth, bool) else tth
        raise illegal_argument(f"[rest_total_hits_as_int] cannot be used if the tracking of total hits is not "
                               f"accurate, got {shown}")


def _shards(n: int) -> dict[str, int]:
    return {"total": n, "successful": n, "skipped": 0, "failed": 0}


class SearchHandlers:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def _gather(self, expr: str | None, params: dict[str, str],
                ) -> tuple[list[StoredDoc], dict[str, IndexMapping], int]:
        """Candidate docs (refreshed snapshot) and mappings of the resolved indices, with alias filters applied."""
        resolved = self.c.resolve(expr, SEARCH_OPTIONS.from_params(params))
        docs: list[StoredDoc] = []
        mappings: dict[str, IndexMapping] = {}
        for name in sorted(resolved.indices):
            idx = self.c.indices[name]
            mappings[name] = idx.mapping
            index_docs = idx.searchable_in_order()
            filters = [idx.aliases[a].filter for a in resolved.via_alias.get(name, [])]
            if filters and name not in resolved.direct and all(f is not None for f in filters):
                index_docs = self._filtered(index_docs, filters, {name: idx.mapping})
            docs.extend(index_docs)
        return docs, mappings, sum(self.c.indices[n].shards for n in resolved.indices)

    def _filtered(self, docs: list[StoredDoc], filters: list[Any], mappings: dict[str, IndexMapping],
                  ) -> list[StoredDoc]:
        from .search import execute_search
        query = {"bool": {"should": filters, "minimum_should_match": 1}} if len(filters) > 1 else filters[0]
        result = execute_search(docs, {"query": query, "size": max(len(docs), 1), "_source": False,
                                       "track_total_hits": True}, mappings)
        keep = {(h["_index"], h["_id"]) for h in result["hits"]["hits"]}
        return [d for d in docs if (d.index, d.id) in keep]

    def _engine_kwargs(self, names: list[str]) -> dict[str, Any]:
        """The optional context A2's engine accepts: index settings, uuids, terms lookups, index names."""
        present = [n for n in names if n in self.c.indices]
        return {
            "settings": {n: self.c.indices[n].render_settings() for n in present},
            "uuids": {n: self.c.indices[n].uuid for n in present},
            "get_source": self._lookup_source,
            "resolve_index": self._resolve_lenient,
        }

    def _lookup_source(self, index: str, doc_id: str) -> dict[str, Any] | None:
        try:
            idx = self.c.single_index(index)
        except ESError:
            return None
        doc = idx.docs.get(doc_id)
        return None if doc is None else doc.source

    def _resolve_lenient(self, expr: str) -> list[str]:
        try:
            return self.c.resolve(expr, IndicesOptions(ignore_unavailable=True)).indices
        except ESError:
            return []

    def _run_search(self, expr: str | None, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        from .search import execute_search
        start = time.monotonic()
        pit_spec = body.get("pit")
        pit_id: str | None = None
        if pit_spec is not None:
            if expr:
                raise action_request_validation("[indices] cannot be used with point in time. Do not specify any "
                                                "index with point in time.")
            if not isinstance(pit_spec, dict) or not pit_spec.get("id"):
                raise ESError(400, "parsing_exception", "[pit] failed to parse: [id] is required", line=1, col=1)
            pit_id = str(pit_spec["id"])
            pit = self.c.get_pit(pit_id)
            if pit is None:
                raise ESError(404, "search_context_missing_exception",
                              f"No search context found for id [{abs(hash(pit_id)) % 1000}]")
            if pit_spec.get("keep_alive") is not None:
                pit.keep_alive = settings_mod.parse_time(pit_spec["keep_alive"], "keep_alive") or 0.0
            pit.expires = time.monotonic() + pit.keep_alive
            docs = [d for n in pit.indices for d in pit.docs[n]]
            mappings = dict(pit.mappings)
            shard_count = len(pit.indices)
            engine_body = {k: v for k, v in body.items() if k != "pit"}
            result = execute_search(docs, engine_body, mappings, pit=True, **self._engine_kwargs(pit.indices))
        else:
            docs, mappings, shard_count = self._gather(expr, params)
            result = execute_search(docs, body, mappings, **self._engine_kwargs(list(mappings)))
        out: dict[str, Any] = {}
        if pit_id is not None:
            out["pit_id"] = pit_id
        out["took"] = int((time.monotonic() - start) * 1000)
        out["timed_out"] = False
        out["_shards"] = _shards(shard_count)
        engine_shards = result.pop("_shards", None)
        if isinstance(engine_shards, dict) and engine_shards.get("failed"):
            failed = int(engine_shards["failed"])
            out["_shards"] = {**out["_shards"], "successful": max(0, shard_count - failed), "failed": failed,
                              "failures": engine_shards.get("failures", [])}
        out.update(result)
        if params.get("rest_total_hits_as_int") in ("", "true"):
            total = out.get("hits", {}).get("total")
            if isinstance(total, dict):
                out["hits"]["total"] = total.get("value")
        return out

    def search(self, req: Request) -> Response:
        body = req.json_object()
        body = apply_url_params(body, req.params)
        check_total_hits_as_int(body, req.params)
        with self.c.lock:
            if "scroll" in req.params:
                return Response(200, self._start_scroll(req.path_params.get("index"), body, req.params))
            return Response(200, self._run_search(req.path_params.get("index"), body, req.params))

    # ------------------------------------------------------------------ scroll (on a frozen snapshot, like a PIT)
    def _start_scroll(self, expr: str | None, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        keep_alive = settings_mod.parse_time(params["scroll"], "scroll") or 0.0
        size = int(body.get("size", 10))
        resolved = self.c.resolve(expr, SEARCH_OPTIONS.from_params(params))
        names = sorted(resolved.indices)
        window = min((int(self.c.indices[n].settings.get("index.max_result_window", 10000)) for n in names),
                     default=10000)
        if size > window:
            raise illegal_argument(f"Batch size is too large, size must be less than or equal to: [{window}] but "
                                   f"was [{size}]. Scroll batch sizes cost as much memory as result windows so they "
                                   "are controlled by the [index.max_result_window] index level setting.")
        if body.get("from"):
            raise action_request_validation("using [from] is not allowed in a scroll context")
        pit = self.c.open_pit(names, keep_alive)
        self.c.scrolls[pit.id] = {"body": {k: v for k, v in body.items() if k != "from"}, "offset": 0,
                                  "params": params}
        return self._scroll_page(pit.id)

    def _scroll_page(self, scroll_id: str) -> dict[str, Any]:
        from .search import execute_search
        start = time.monotonic()
        pit = self.c.get_pit(scroll_id)
        state = self.c.scrolls.get(scroll_id)
        if pit is None or state is None:
            raise ESError(404, "search_context_missing_exception",
                          f"No search context found for id [{abs(hash(scroll_id)) % 1000}]")
        pit.expires = time.monotonic() + pit.keep_alive
        body = {**state["body"], "from": state["offset"]}
        docs = [d for n in pit.indices for d in pit.docs[n]]
        kwargs = self._engine_kwargs([])
        kwargs["settings"] = {n: {"index.max_result_window": str(10 ** 9)} for n in pit.indices}
        result = execute_search(docs, body, dict(pit.mappings), **kwargs)
        state["offset"] += int(state["body"].get("size", 10))
        result.pop("_shards", None)
        out: dict[str, Any] = {"_scroll_id": scroll_id, "took": int((time.monotonic() - start) * 1000),
                               "timed_out": False, "_shards": _shards(len(pit.indices)), **result}
        if state["params"].get("rest_total_hits_as_int") in ("", "true"):
            total = out.get("hits", {}).get("total")
            if isinstance(total, dict):
                out["hits"]["total"] = total.get("value")
        return out

    def scroll(self, req: Request) -> Response:
        body = req.json_object()
        scroll_id = body.get("scroll_id") or req.path_params.get("scroll_id") or req.param("scroll_id")
        if not scroll_id:
            raise action_request_validation("scrollId is missing")
        keep = body.get("scroll") or req.param("scroll")
        with self.c.lock:
            pit = self.c.get_pit(str(scroll_id))
            if pit is not None and keep:
                pit.keep_alive = settings_mod.parse_time(keep, "scroll") or pit.keep_alive
            return Response(200, self._scroll_page(str(scroll_id)))

    def clear_scroll(self, req: Request) -> Response:
        body = req.json_object()
        raw = body.get("scroll_id") or req.path_params.get("scroll_id") or []
        ids = raw if isinstance(raw, list) else str(raw).split(",")
        with self.c.lock:
            if ids == ["_all"]:
                ids = list(self.c.scrolls)
            freed = 0
            for sid in ids:
                if self.c.scrolls.pop(str(sid), None) is not None:
                    self.c.pits.pop(str(sid), None)
                    freed += 1
        return Response(200 if freed or not ids else 404, {"succeeded": True, "num_freed": freed})

    def count(self, req: Request) -> Response:
        from .search import execute_count, execute_search
        terminate_after = _int(req.params["terminate_after"], "terminate_after") \
            if "terminate_after" in req.params else None
        if terminate_after is not None and terminate_after <= 0:
            raise illegal_argument("terminateAfter must be > 0")
        body = req.json_object()
        for key in body:
            if key not in ("query",):
                raise ESError(400, "parsing_exception", f"request does not support [{key}]", line=1, col=2)
        if "q" in req.params:
            body = {"query": _q_query(req.params)}
        with self.c.lock:
            docs, mappings, shard_count = self._gather(req.path_params.get("index"), req.params)
            extra = self._engine_kwargs(list(mappings))
            if "min_score" in req.params:
                scored = execute_search(docs, {**body, "min_score": float(req.params["min_score"]), "size": 0,
                                               "track_total_hits": True}, mappings, **extra)
                count = int(scored["hits"]["total"]["value"])
            else:
                count = execute_count(docs, body, mappings, settings=extra["settings"], uuids=extra["uuids"],
                                      get_source=extra["get_source"])
        out: dict[str, Any] = {"count": count, "_shards": _shards(shard_count)}
        if terminate_after is not None and count >= terminate_after:
            out = {"count": terminate_after, "terminated_early": True, "_shards": _shards(shard_count)}
        return Response(200, out)

    def msearch(self, req: Request) -> Response:
        start = time.monotonic()
        lines = list(req.body.split(b"\n"))
        if lines and lines[-1].strip() == b"":
            lines = lines[:-1]
        if not req.body.strip():
            raise action_request_validation("no requests added")
        if not req.body.endswith(b"\n"):
            raise illegal_argument("The msearch request must be terminated by a newline [\n]")
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        i = 0
        while i < len(lines):
            header_raw = lines[i].strip()
            i += 1
            header = parse_json(header_raw) if header_raw else {}
            if not isinstance(header, dict):
                raise illegal_argument("msearch header must be an object")
            if i >= len(lines):
                break
            body = parse_json(lines[i]) if lines[i].strip() else {}
            i += 1
            if not isinstance(body, dict):
                raise illegal_argument("msearch body must be an object")
            pairs.append((header, body))
        if not pairs:
            raise action_request_validation("no requests added")
        for header, body in pairs:
            check_total_hits_as_int(body, req.params)
            if body.get("pit") is not None and (header.get("index") or req.path_params.get("index")):
                raise action_request_validation("[indices] cannot be used with point in time. Do not specify any "
                                                "index with point in time.")
        responses = []
        for header, body in pairs:
            params = {k: v for k, v in req.params.items()
                      if k in ("ignore_unavailable", "allow_no_indices", "expand_wildcards",
                               "rest_total_hits_as_int")}
            for key in ("ignore_unavailable", "allow_no_indices", "expand_wildcards"):
                if key in header:
                    value = header[key]
                    params[key] = ",".join(value) if isinstance(value, list) else str(value).lower()
            index = header.get("index", req.path_params.get("index"))
            if isinstance(index, list):
                index = ",".join(index)
            try:
                with self.c.lock:
                    out = self._run_search(index, body, params)
                out["status"] = 200
            except ESError as err:
                out = {"error": err.body()["error"], "status": err.status}
            responses.append(out)
        return Response(200, {"took": int((time.monotonic() - start) * 1000), "responses": responses})

    def open_pit(self, req: Request) -> Response:
        keep_alive_raw = req.param("keep_alive")
        if keep_alive_raw is None:
            raise action_request_validation("[keep_alive] is not specified")
        keep_alive = settings_mod.parse_time(keep_alive_raw, "keep_alive") or 0.0
        with self.c.lock:
            resolved = self.c.resolve(req.path_params["index"], SEARCH_OPTIONS.from_params(req.params))
            pit = self.c.open_pit(sorted(resolved.indices), keep_alive)
        return Response(200, {"id": pit.id, "_shards": _shards(len(pit.indices))})

    def close_pit(self, req: Request) -> Response:
        body = req.json_object(required=True)
        pit_id = body.get("id")
        if not pit_id:
            raise action_request_validation("[id] is required")
        with self.c.lock:
            freed = 1 if self.c.pits.pop(str(pit_id), None) is not None else 0
        return Response(200 if freed else 404, {"succeeded": True, "num_freed": freed})
