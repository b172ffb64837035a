"""Document endpoints: index/create, get/exists/_source, delete, update, mget and bulk."""

from __future__ import annotations

from typing import Any

from . import bulk, documents
from .cluster import Cluster, IndexState
from .errors import ESError, illegal_argument
from .jsonbody import parse_json
from .routing import Request, Response, Router


def register(r: Router, cluster: Cluster) -> None:
    h = DocHandlers(cluster)
    r.add("PUT,POST", "/{index}/_doc/{id}", h.index)
    r.add("POST", "/{index}/_doc", h.index)
    r.add("PUT,POST", "/{index}/_create/{id}", h.create)
    r.add("GET,HEAD", "/{index}/_doc/{id}", h.get)
    r.add("DELETE", "/{index}/_doc/{id}", h.delete)
    r.add("GET,HEAD", "/{index}/_source/{id}", h.get_source)
    r.add("POST", "/{index}/_update/{id}", h.update)
    r.add("GET,POST", "/_mget", h.mget)
    r.add("GET,POST", "/{index}/_mget", h.mget)
    r.add("POST,PUT", "/_bulk", h.bulk)
    r.add("POST,PUT", "/{index}/_bulk", h.bulk)


def refresh_mode(req: Request) -> str:
    value = req.param("refresh")
    if value is None or value == "false":
        return "false"
    if value in ("", "true"):
        return "true"
    if value == "wait_for":
        return "wait_for"
    raise illegal_argument(f"Unknown value for refresh: [{value}].")


class DocHandlers:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def _finish(self, mode: str, touched: dict[str, int], body: dict[str, Any],
                indices: list[IndexState], routing: str | None = None) -> None:
        """Apply ``refresh`` after a write (``wait_for`` waits without holding the lock)."""
        if mode == "true":
            with self.c.lock:
                for idx in indices:
                    if idx.name not in self.c.indices:
                        continue
                    if "_id" in body:
                        self.c.refresh_shard(idx, str(body["_id"]), routing)
                    else:
                        self.c.refresh_index(idx)
            body["forced_refresh"] = True
        elif mode == "wait_for":
            self.c.wait_for_refresh(touched)

    def _source(self, req: Request) -> Any:
        if not req.has_body:
            raise ESError(400, "parse_exception", "request body is required")
        return parse_json(req.body, doc=True)

    def index(self, req: Request) -> Response:
        return self._write(req, req.param("op_type") or "index")

    def create(self, req: Request) -> Response:
        if req.param("op_type") not in (None, "create"):
            raise illegal_argument("opType must be 'create', found: [" + str(req.param("op_type")) + "]")
        return self._write(req, "create")

    def _write(self, req: Request, op_type: str) -> Response:
        mode = refresh_mode(req)
        doc_id = req.path_params.get("id")
        opts = documents.WriteOptions.from_params({**req.params, "op_type": op_type})
        source = self._source(req)
        with self.c.lock:
            status, body, idx = documents.index_doc(self.c, req.path_params["index"], doc_id, source, opts)
            touched = {idx.name: idx.refresh_gen}
        self._finish(mode, touched, body, [idx], opts.routing)
        return Response(status, body)

    def get(self, req: Request) -> Response:
        with self.c.lock:
            status, body = documents.get_doc(self.c, req.path_params["index"], req.path_params["id"], req.params)
        return Response(status, None if req.method == "HEAD" else body)

    def get_source(self, req: Request) -> Response:
        with self.c.lock:
            try:
                source = documents.get_source(self.c, req.path_params["index"], req.path_params["id"], req.params)
            except ESError:
                if req.method == "HEAD":
                    return Response(404)
                raise
        return Response(200, None if req.method == "HEAD" else source)

    def delete(self, req: Request) -> Response:
        mode = refresh_mode(req)
        opts = documents.WriteOptions.from_params(req.params)
        with self.c.lock:
            status, body, idx = documents.delete_doc(self.c, req.path_params["index"], req.path_params["id"], opts)
            touched = {idx.name: idx.refresh_gen}
        self._finish(mode, touched, body, [idx], opts.routing)
        return Response(status, body)

    def update(self, req: Request) -> Response:
        mode = refresh_mode(req)
        opts = documents.WriteOptions.from_params(req.params)
        if not req.has_body:
            raise ESError(400, "parse_exception", "request body is required")
        body_in = req.json()
        source_filter: Any = None
        if any(k in req.params for k in ("_source", "_source_includes", "_source_excludes")):
            source_filter = documents.parse_source_spec(req.param("_source"), req.param("_source_includes"),
                                                        req.param("_source_excludes"))
            if source_filter is None:
                source_filter = True
        with self.c.lock:
            status, body, idx = documents.update_doc(self.c, req.path_params["index"], req.path_params["id"],
                                                     body_in, opts, _spec_to_body(source_filter))
            touched = {idx.name: idx.refresh_gen}
        if body.get("result") != "noop":
            self._finish(mode, touched, body, [idx], opts.routing)
        return Response(status, body)

    def mget(self, req: Request) -> Response:
        body = req.json()
        with self.c.lock:
            if str(req.param("refresh", "false")) in ("", "true"):
                for idx in self.c.indices.values():
                    self.c.refresh_index(idx)
            params = {k: v for k, v in req.params.items() if k != "refresh"}
            return Response(200, documents.mget(self.c, req.path_params.get("index"), body, params))

    def bulk(self, req: Request) -> Response:
        mode = refresh_mode(req)
        items = bulk.parse(req.body, req.path_params.get("index"))
        with self.c.lock:
            body, touched = bulk.execute(self.c, items, req.params)
            indices = [self.c.indices[n] for n in touched if n in self.c.indices]
        self._finish(mode, touched, {}, indices)
        if mode == "true":
            for item in body["items"]:
                for result in item.values():
                    if "error" not in result:
                        result["forced_refresh"] = True
        return Response(200, body)


def _spec_to_body(spec: Any) -> Any:
    """A parsed source spec back into the form update_doc accepts for its ``get`` block."""
    if isinstance(spec, tuple):
        return {"includes": spec[0] or [], "excludes": spec[1] or []} if spec[0] or spec[1] else True
    return spec
