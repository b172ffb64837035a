"""``_update_by_query`` (no script: re-index matches under the current mapping) and ``_delete_by_query``.

Like ES, both read the refreshed snapshot, then write each match with a seq_no check: a document changed
since the snapshot is a version conflict (``conflicts=abort`` stops with 409, ``proceed`` counts it).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from . import documents
from .api_search import SEARCH_OPTIONS, SearchHandlers, _q_query
from .cluster import Cluster
from .errors import ESError, illegal_argument
from .routing import Request, Response, Router


def register(r: Router, cluster: Cluster, search: SearchHandlers) -> None:
    h = ByQueryHandlers(cluster, search)
    r.add("POST", "/{index}/_update_by_query", h.update_by_query)
    r.add("POST", "/{index}/_delete_by_query", h.delete_by_query)


class ByQueryHandlers:
    def __init__(self, cluster: Cluster, search: SearchHandlers) -> None:
        self.c = cluster
        self.search = search

    def update_by_query(self, req: Request) -> Response:
        return self._run(req, delete=False)

    def delete_by_query(self, req: Request) -> Response:
        return self._run(req, delete=True)

    def _run(self, req: Request, *, delete: bool) -> Response:
        from .search import execute_search
        start = time.monotonic()
        body = req.json_object()
        script = body.get("script")
        if script is not None and not delete:
            from .painless import parse_script
            parse_script(script)       # refuse stored scripts and other languages up front
        if delete and body.get("query") is None and "q" not in req.params:
            raise ESError(400, "action_request_validation_exception",
                          "Validation Failed: 1: query is missing;")
        conflicts = str(body.get("conflicts") or req.param("conflicts") or "abort")
        if conflicts not in ("abort", "proceed"):
            raise illegal_argument(f"conflicts may only be \"proceed\" or \"abort\" but was [{conflicts}]")
        raw_max = body.get("max_docs", req.param("max_docs"))
        max_docs = int(raw_max) if raw_max is not None else None
        query = _q_query(req.params) if "q" in req.params else body.get("query") or {"match_all": {}}
        stats = {"total": 0, "updated": 0, "deleted": 0, "noops": 0, "version_conflicts": 0}
        failures: list[dict[str, Any]] = []
        touched: set[str] = set()
        with self.c.lock:
            resolved = self.c.resolve(req.path_params["index"], SEARCH_OPTIONS.from_params(req.params))
            docs, mappings, _ = self.search._gather(",".join(resolved.indices) or None, {}) \
                if resolved.indices else ([], {}, 0)
            kwargs = self.search._engine_kwargs(list(mappings))
            kwargs["settings"] = {n: {"index.max_result_window": str(10 ** 9)} for n in mappings}
            hits = execute_search(docs, {"query": query, "size": max(len(docs), 1), "_source": False,
                                         "track_total_hits": True}, mappings, **kwargs)["hits"]["hits"] if docs else []
            snapshot = {(d.index, d.id): d for d in docs}
            for hit in hits[:max_docs] if max_docs is not None else hits:
                snap = snapshot[(hit["_index"], hit["_id"])]
                stats["total"] += 1
                opts = documents.WriteOptions(if_seq_no=snap.seq_no, if_primary_term=snap.primary_term,
                                              routing=snap.routing)
                try:
                    if delete:
                        documents.delete_doc(self.c, snap.index, snap.id, opts)
                        stats["deleted"] += 1
                    else:
                        live = self.c.indices[snap.index].docs.get(snap.id)
                        source = copy.deepcopy(live.source if live else snap.source)
                        op = "index"
                        if script is not None:
                            from .painless import run_update_script
                            ctx: dict[str, Any] = {"_source": source, "op": "index", "_id": snap.id,
                                                   "_index": snap.index, "_version": snap.version}
                            run_update_script(script, ctx)
                            source, op = ctx["_source"], str(ctx.get("op"))
                        if op in ("noop", "none"):
                            stats["noops"] += 1
                            continue
                        if op == "delete":
                            documents.delete_doc(self.c, snap.index, snap.id, opts)
                            stats["deleted"] += 1
                        else:
                            documents.index_doc(self.c, snap.index, snap.id, source, opts)
                            stats["updated"] += 1
                    touched.add(snap.index)
                except ESError as err:
                    if err.status != 409:
                        raise
                    stats["version_conflicts"] += 1
                    if conflicts == "abort":
                        failures.append({"index": snap.index, "id": snap.id, "cause": err.error_object(),
                                         "status": 409})
                        break
            if req.flag("refresh"):
                for name in touched:
                    if name in self.c.indices:
                        self.c.refresh_index(self.c.indices[name])
        out = {"took": int((time.monotonic() - start) * 1000), "timed_out": False, **stats, "batches": 1,
               "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
               "throttled_until_millis": 0, "failures": failures}
        if delete:
            out.pop("updated")
        return Response(409 if failures else 200, out)
