"""REST API wiring: routes → handlers; root info, cluster health, cat APIs and the ``/_fake/`` controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import api_byquery, api_docs, api_indices, api_search
from . import settings as settings_mod
from .cluster import Cluster, IndexState
from .errors import ESError
from .expressions import IndicesOptions
from .faults import FaultRegistry
from .routing import Request, Response, Router

VERSION = {
    "number": "8.18.8",
    "build_flavor": "default",
    "build_type": "docker",
    "build_hash": "f4c9a5ca8c1c1b5d2d7f4ce9d0b0f2b0c4a5e1d3",
    "build_date": "2025-10-02T12:00:00.000000000Z",
    "build_snapshot": False,
    "lucene_version": "9.12.1",
    "minimum_wire_compatibility_version": "7.17.0",
    "minimum_index_compatibility_version": "7.0.0",
}
CLUSTER_NAME = "elasticsearch"
# (method, path) → (capabilities, parameters) this server implements, for GET /_capabilities.
CAPABILITIES: dict[tuple[str, str], tuple[set[str], set[str]]] = {
    ("GET", "/_cluster/health"): ({"unassigned_pri_shard_count"},
                                 {"index", "level", "wait_for_status", "timeout", "expand_wildcards"}),
}
NODE_NAME = "fake-es-node-1"


class Api:
    def __init__(self, faults: FaultRegistry, nodes: int = 2) -> None:
        self.cluster = Cluster(nodes)
        self.faults = faults
        self.router = Router()
        r = self.router
        r.add("GET", "/", self.info)
        r.add("HEAD", "/", lambda req: Response(200))
        r.add("GET", "/_cluster/health", self.health)
        r.add("GET", "/_cluster/health/{index}", self.health)
        r.add("GET", "/_cat/indices", self.cat_indices)
        r.add("GET", "/_cat/indices/{index}", self.cat_indices)
        r.add("GET", "/_cat/aliases", self.cat_aliases)
        r.add("GET", "/_cat/aliases/{name}", self.cat_aliases)
        r.add("GET", "/_cat/health", self.cat_health)
        r.add("GET", "/_capabilities", self.capabilities)
        r.add("GET", "/_cluster/settings", self.get_cluster_settings)
        r.add("PUT", "/_cluster/settings", self.put_cluster_settings)
        r.add("GET,POST,DELETE", "/_fake/faults", self.fake_faults)
        r.add("POST", "/_fake/reset", self.fake_reset)
        api_indices.register(r, self.cluster)
        api_docs.register(r, self.cluster)
        search = api_search.register(r, self.cluster)
        api_byquery.register(r, self.cluster, search)

    def handle(self, req: Request) -> Response:
        return self.router.dispatch(req)

    # ------------------------------------------------------------------ root and cluster
    def info(self, req: Request) -> Response:
        return Response(200, {
            "name": NODE_NAME, "cluster_name": CLUSTER_NAME, "cluster_uuid": self.cluster.cluster_uuid,
            "version": dict(VERSION), "tagline": "You Know, for Search",
        })

    def health(self, req: Request) -> Response:
        with self.cluster.lock:
            expr = req.path_params.get("index")
            opts = IndicesOptions(expand_closed=True, expand_hidden=True).from_params(req.params)
            missing = False
            try:
                names = self.cluster.resolve(expr, opts).indices if expr else list(self.cluster.indices)
            except ESError:
                names, missing = [], True      # a missing index makes health red (and the wait time out)
            indices = [self.cluster.indices[n] for n in names]
            status = "red" if missing else ("yellow" if any(i.health == "yellow" for i in indices) else "green")
            primaries = sum(i.shards for i in indices)
            active = sum(i.shards * (1 + i.assigned_replicas) for i in indices)
            unassigned = sum(i.unassigned_shards for i in indices)
            body: dict[str, Any] = {
                "cluster_name": CLUSTER_NAME, "status": status, "timed_out": False,
                "number_of_nodes": self.cluster.nodes, "number_of_data_nodes": self.cluster.nodes,
                "active_primary_shards": primaries, "active_shards": active,
                "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": unassigned,
                "unassigned_primary_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0 if not active + unassigned
                else active * 100.0 / (active + unassigned),
            }
            level = req.param("level", "cluster")
            if level in ("indices", "shards"):
                body["indices"] = {i.name: _index_health(i, level == "shards") for i in indices}
        wanted = req.param("wait_for_status")
        rank = {"green": 0, "yellow": 1, "red": 2}
        if (wanted and rank.get(status, 2) > rank.get(wanted, 2)) or missing:
            body["timed_out"] = True
            return Response(408, body)
        return Response(200, body)

    def get_cluster_settings(self, req: Request) -> Response:
        return Response(200, {"persistent": self._cluster_settings(req), "transient": {}})

    def _cluster_settings(self, req: Request) -> dict[str, Any]:
        flat = {"action.destructive_requires_name": str(self.cluster.destructive_requires_name).lower()}
        return flat if req.flag("flat_settings") else settings_mod.nest(flat)

    def put_cluster_settings(self, req: Request) -> Response:
        """Only ``action.destructive_requires_name`` is modelled (tests flip it to allow wildcard deletes)."""
        body = req.json_object(required=True)
        for scope in ("persistent", "transient"):
            values = body.get(scope) or {}
            flat = _flatten_plain(values)
            for key, value in flat.items():
                if key != "action.destructive_requires_name":
                    raise ESError(400, "illegal_argument_exception",
                                  f"persistent setting [{key}], not recognized by this test server")
                with self.cluster.lock:
                    self.cluster.destructive_requires_name = value is None or str(value).lower() != "false"
        return Response(200, {"acknowledged": True, "persistent": self._cluster_settings(req), "transient": {}})

    def capabilities(self, req: Request) -> Response:
        method = (req.param("method") or "GET").upper()
        path = req.param("path") or "/"
        wanted = {c for c in (req.param("capabilities") or "").split(",") if c}
        params = {p for p in (req.param("parameters") or "").split(",") if p}
        known = CAPABILITIES.get((method, path))
        supported = known is not None and wanted <= known[0] and params <= known[1]
        return Response(200, {"supported": supported})

    # ------------------------------------------------------------------ cat
    def cat_indices(self, req: Request) -> Response:
        with self.cluster.lock:
            opts = IndicesOptions(expand_closed=True, expand_hidden=True).from_params(req.params)
            names = self.cluster.resolve(req.path_params.get("index"), opts).indices
            rows = []
            for name in sorted(names):
                idx = self.cluster.indices[name]
                count = len(idx.searchable)
                size = f"{225 + 300 * count}b"
                rows.append({
                    "health": idx.health, "status": "close" if idx.closed else "open",
                    "index": name, "uuid": idx.uuid, "pri": str(idx.shards), "rep": str(idx.replicas),
                    "docs.count": None if idx.closed else str(count), "docs.deleted": None if idx.closed else "0",
                    "store.size": None if idx.closed else size, "pri.store.size": None if idx.closed else size,
                    "dataset.size": None if idx.closed else size,
                    "creation.date": str(idx.creation_date),
                })
        aliases = {"h": "health", "s": "status", "i": "index", "idx": "index", "id": "uuid", "p": "pri",
                   "shards.primary": "pri", "r": "rep", "shards.replica": "rep", "dc": "docs.count",
                   "docsCount": "docs.count", "dd": "docs.deleted", "ss": "store.size", "storeSize": "store.size",
                   "cd": "creation.date"}
        default = ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted",
                   "store.size", "pri.store.size", "dataset.size"]
        return _cat(req, rows, default, aliases)

    def cat_aliases(self, req: Request) -> Response:
        with self.cluster.lock:
            rows = []
            wanted = req.path_params.get("name")
            import fnmatch
            patterns = [p for p in (wanted or "").split(",") if p]
            for name in sorted(self.cluster.indices):
                idx = self.cluster.indices[name]
                for alias, meta in sorted(idx.aliases.items()):
                    if patterns and not any(fnmatch.fnmatchcase(alias, p) for p in patterns):
                        continue
                    rows.append({
                        "alias": alias, "index": name, "filter": "*" if meta.filter else "-",
                        "routing.index": meta.index_routing or "-", "routing.search": meta.search_routing or "-",
                        "is_write_index": "-" if meta.is_write_index is None else str(meta.is_write_index).lower(),
                    })
        default = ["alias", "index", "filter", "routing.index", "routing.search", "is_write_index"]
        return _cat(req, rows, default, {"a": "alias", "i": "index", "idx": "index", "f": "filter",
                                         "ri": "routing.index", "rs": "routing.search", "w": "is_write_index"})

    def cat_health(self, req: Request) -> Response:
        health = self.health(Request("GET", "/_cluster/health", "/_cluster/health", {}, b"", {})).body
        row = {"cluster": CLUSTER_NAME, "status": health["status"], "node.total": "1", "node.data": "1",
               "shards": str(health["active_shards"]), "pri": str(health["active_primary_shards"]),
               "unassign": str(health["unassigned_shards"])}
        return _cat(req, [row], list(row), {})

    # ------------------------------------------------------------------ /_fake controls
    def fake_faults(self, req: Request) -> Response:
        if req.method == "POST":
            fault = self.faults.add(req.json())
            return Response(200, {"acknowledged": True, "id": fault.id})
        if req.method == "DELETE":
            self.faults.clear()
            return Response(200, {"acknowledged": True})
        return Response(200, {"faults": self.faults.list()})

    def fake_reset(self, req: Request) -> Response:
        self.faults.clear()
        self.cluster.reset()
        return Response(200, {"acknowledged": True})


def _flatten_plain(values: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            out.update(_flatten_plain(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _index_health(idx: IndexState, shards: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": idx.health, "number_of_shards": idx.shards, "number_of_replicas": idx.replicas,
        "active_primary_shards": idx.shards, "active_shards": idx.shards * (1 + idx.assigned_replicas),
        "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": idx.unassigned_shards,
        "unassigned_primary_shards": 0}
    if shards:
        out["shards"] = {str(n): {
            "status": idx.health, "primary_active": True, "active_shards": 1 + idx.assigned_replicas,
            "relocating_shards": 0, "initializing_shards": 0,
            "unassigned_shards": idx.replicas - idx.assigned_replicas, "unassigned_primary_shards": 0,
        } for n in range(idx.shards)}
    return out


def _cat(req: Request, rows: list[dict[str, Any]], default: list[str], aliases: dict[str, str]) -> Response:
    cols = default
    if req.param("h"):
        cols = [aliases.get(c.strip(), c.strip()) for c in str(req.param("h")).split(",") if c.strip()]
    if req.param("s"):
        for spec in reversed(str(req.param("s")).split(",")):
            key, _, order = spec.partition(":")
            key = aliases.get(key, key)
            rows.sort(key=_row_key(key), reverse=order == "desc")
    fmt = req.param("format") or ("json" if "json" in req.headers.get("accept", "") else "text")
    if fmt == "json":
        return Response(200, [{c: r.get(c) for c in cols} for r in rows])
    table = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    if req.flag("v"):
        table.insert(0, cols)
    widths = [max((len(row[i]) for row in table), default=0) for i in range(len(cols))]
    text = "".join(" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n" for row in table)
    return Response(200, text)


def _row_key(column: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(column))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    try:
        return (1, float(value))
    except ValueError:
        return (2, str(value))
