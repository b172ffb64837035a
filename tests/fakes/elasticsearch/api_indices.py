"""Index, mapping, settings, alias, template and rollover endpoints."""

from __future__ import annotations

import copy
import datetime
import fnmatch
import re
import time
from dataclasses import replace
from typing import Any

from . import settings as settings_mod
from .cluster import Cluster, IndexState
from .errors import ESError, action_request_validation, illegal_argument
from .expressions import (
    STRICT_EXPAND_HIDDEN,
    STRICT_EXPAND_OPEN,
    AliasMeta,
    IndicesOptions,
    is_wildcard,
    split_expression,
)
from .routing import Request, Response, Router

ACK = {"acknowledged": True}


def register(r: Router, cluster: Cluster) -> None:
    h = IndexHandlers(cluster)
    r.add("PUT", "/{index}", h.create)
    r.add("DELETE", "/{index}", h.delete)
    r.add("GET", "/{index}", h.get)
    r.add("HEAD", "/{index}", h.exists)
    r.add("GET", "/_mapping", h.get_mapping)
    r.add("GET", "/{index}/_mapping", h.get_mapping)
    r.add("PUT,POST", "/{index}/_mapping", h.put_mapping)
    r.add("GET", "/_settings", h.get_settings)
    r.add("GET", "/_settings/{name}", h.get_settings)
    r.add("GET", "/{index}/_settings", h.get_settings)
    r.add("GET", "/{index}/_settings/{name}", h.get_settings)
    r.add("PUT", "/_settings", h.put_settings)
    r.add("PUT", "/{index}/_settings", h.put_settings)
    r.add("POST,GET", "/_refresh", h.refresh)
    r.add("POST,GET", "/{index}/_refresh", h.refresh)
    r.add("POST", "/{index}/_open", h.open)
    r.add("POST", "/{index}/_close", h.close)
    r.add("GET", "/_resolve/index/{name}", h.resolve_index)
    r.add("POST", "/{index}/_rollover", h.rollover)
    r.add("POST", "/{index}/_rollover/{new_index}", h.rollover)
    # aliases
    r.add("POST", "/_aliases", h.update_aliases)
    for path in ("/{index}/_alias/{name}", "/{index}/_aliases/{name}"):
        r.add("PUT,POST", path, h.put_alias)
        r.add("DELETE", path, h.delete_alias)
    r.add("GET", "/_alias", h.get_alias)
    r.add("GET", "/_alias/{name}", h.get_alias)
    r.add("GET", "/{index}/_alias", h.get_alias)
    r.add("GET", "/{index}/_alias/{name}", h.get_alias)
    r.add("HEAD", "/_alias/{name}", h.exists_alias)
    r.add("HEAD", "/{index}/_alias/{name}", h.exists_alias)
    # templates
    r.add("PUT,POST", "/_index_template/{name}", h.put_index_template)
    r.add("GET", "/_index_template", h.get_index_template)
    r.add("GET", "/_index_template/{name}", h.get_index_template)
    r.add("HEAD", "/_index_template/{name}", h.exists_index_template)
    r.add("DELETE", "/_index_template/{name}", h.delete_index_template)
    r.add("POST", "/_index_template/_simulate_index/{name}", h.simulate_index)
    r.add("PUT,POST", "/_component_template/{name}", h.put_component_template)
    r.add("GET", "/_component_template", h.get_component_template)
    r.add("GET", "/_component_template/{name}", h.get_component_template)
    r.add("HEAD", "/_component_template/{name}", h.exists_component_template)
    r.add("DELETE", "/_component_template/{name}", h.delete_component_template)


def _shards(indices: list[IndexState]) -> dict[str, int]:
    return {"total": sum(i.shards * (1 + i.replicas) for i in indices),
            "successful": sum(i.shards * (1 + i.assigned_replicas) for i in indices), "failed": 0}


class IndexHandlers:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    # ------------------------------------------------------------------ indices
    def create(self, req: Request) -> Response:
        name = req.path_params["index"]
        body = req.json_object()
        with self.c.lock:
            idx = self.c.create_index(name, body)
        return Response(200, {"acknowledged": True, "shards_acknowledged": True, "index": idx.name})

    def delete(self, req: Request) -> Response:
        with self.c.lock:
            self.c.delete_indices(req.path_params["index"], req.params)
        return Response(200, dict(ACK))

    def _names(self, req: Request, default: IndicesOptions, key: str = "index") -> list[str]:
        return self.c.resolve(req.path_params.get(key), default.from_params(req.params)).indices

    def get(self, req: Request) -> Response:
        features = [f.strip() for f in (req.param("features") or "aliases,mappings,settings").split(",")]
        flat = req.flag("flat_settings")
        with self.c.lock:
            names = self._names(req, STRICT_EXPAND_OPEN)
            out: dict[str, Any] = {}
            for name in names:
                idx = self.c.indices[name]
                entry: dict[str, Any] = {}
                if "aliases" in features:
                    entry["aliases"] = {a: m.render() for a, m in sorted(idx.aliases.items())}
                if "mappings" in features:
                    entry["mappings"] = idx.mapping.to_body()
                if "settings" in features:
                    rendered = idx.render_settings()
                    if req.flag("human"):
                        rendered["index.creation_date_string"] = _iso_millis(idx.creation_date)
                        rendered["index.version.created_string"] = "8.18.8"
                    entry["settings"] = rendered if flat else settings_mod.nest(rendered)
                    if req.flag("include_defaults"):
                        entry["defaults"] = _defaults(flat, idx.settings)
                out[name] = entry
        return Response(200, out)

    def exists(self, req: Request) -> Response:
        with self.c.lock:
            try:
                names = self._names(req, IndicesOptions(allow_no_indices=False))
            except ESError as err:
                if err.status == 404:
                    return Response(404)
                raise
        return Response(200 if names else 404)

    def get_mapping(self, req: Request) -> Response:
        with self.c.lock:
            names = self._names(req, STRICT_EXPAND_OPEN)
            return Response(200, {n: {"mappings": self.c.indices[n].mapping.to_body()} for n in names})

    def put_mapping(self, req: Request) -> Response:
        body = req.json_object(required=True)
        if len(body) == 1 and "_doc" in body and isinstance(body["_doc"], dict):
            raise illegal_argument("Types cannot be provided in put mapping requests")
        with self.c.lock:
            opts = IndicesOptions(forbid_closed=False).from_params(req.params)
            parts = split_expression(req.path_params["index"])
            resolved = self.c.resolve(parts, opts)
            if req.flag("write_index_only"):
                targets = []
                for n in resolved.names:
                    if n in self.c.indices:
                        targets.append(n)
                    else:
                        targets.append(self.c.write_index(n, auto_create=False).name)
                names = targets
            else:
                names = resolved.indices
            self.c.put_mapping(names, body)
        return Response(200, dict(ACK))

    def get_settings(self, req: Request) -> Response:
        flat = req.flag("flat_settings")
        wanted = [n for n in (req.path_params.get("name") or "").split(",") if n and n != "_all"]
        with self.c.lock:
            names = self._names(req, IndicesOptions(expand_closed=True))
            out: dict[str, Any] = {}
            for name in names:
                selected = settings_mod.select(self.c.indices[name].render_settings(), wanted)
                if not selected and wanted:
                    continue
                entry: dict[str, Any] = {"settings": selected if flat else settings_mod.nest(selected)}
                if req.flag("include_defaults"):
                    entry["defaults"] = _defaults(flat, settings_mod.select(self.c.indices[name].settings, None))
                out[name] = entry
        return Response(200, out)

    def put_settings(self, req: Request) -> Response:
        body = req.json_object(required=True)
        with self.c.lock:
            names = self._names(req, IndicesOptions(expand_closed=True))
            self.c.put_settings(names, body, preserve_existing=req.flag("preserve_existing"))
        return Response(200, dict(ACK))

    def refresh(self, req: Request) -> Response:
        with self.c.lock:
            opts = IndicesOptions(forbid_closed=True).from_params(req.params)
            names = self.c.resolve(req.path_params.get("index"), opts).indices
            indices = [self.c.indices[n] for n in names]
            for idx in indices:
                self.c.refresh_index(idx)
        return Response(200, {"_shards": _shards(indices)})

    def open(self, req: Request) -> Response:
        with self.c.lock:
            names = self._names(req, IndicesOptions(expand_closed=True, allow_no_indices=True))
            for n in names:
                idx = self.c.indices[n]
                idx.closed = False
        return Response(200, {"acknowledged": True, "shards_acknowledged": True})

    def close(self, req: Request) -> Response:
        with self.c.lock:
            expr = req.path_params["index"]
            if self.c.destructive_requires_name and any(is_wildcard(p) or p == "_all"
                                                        for p in split_expression(expr)):
                raise illegal_argument("Wildcard expressions or all indices are not allowed")
            names = self._names(req, IndicesOptions())
            for n in names:
                idx = self.c.indices[n]
                self.c.refresh_index(idx)
                idx.closed = True
        return Response(200, {"acknowledged": True, "shards_acknowledged": True,
                              "indices": {n: {"closed": True} for n in names}})

    def resolve_index(self, req: Request) -> Response:
        with self.c.lock:
            opts = IndicesOptions(ignore_unavailable=False, allow_no_indices=True).from_params(req.params)
            resolved = self.c.resolve(req.path_params["name"], opts)
            aliases = self.c.alias_map()
            index_rows = []
            alias_rows = []
            for name in sorted(set(resolved.names)):
                if name in self.c.indices:
                    idx = self.c.indices[name]
                    attrs = ["closed" if idx.closed else "open"]
                    if idx.hidden:
                        attrs.append("hidden")
                    row: dict[str, Any] = {"name": name}
                    if idx.aliases:
                        row["aliases"] = sorted(idx.aliases)
                    row["attributes"] = attrs
                    index_rows.append(row)
                else:
                    alias_rows.append({"name": name, "indices": sorted(aliases.get(name, []))})
        return Response(200, {"indices": index_rows, "aliases": alias_rows, "data_streams": []})

    # ------------------------------------------------------------------ rollover
    def rollover(self, req: Request) -> Response:
        target = req.path_params["index"]
        body = req.json_object()
        dry_run = req.flag("dry_run")
        with self.c.lock:
            aliases = self.c.alias_map()
            if target in self.c.indices:
                raise illegal_argument("rollover target is a [concrete index] but one of [alias,data_stream] "
                                       "was expected")
            if target not in aliases:
                raise illegal_argument(f"rollover target [{target}] does not exist")
            members = aliases[target]
            writers = [m for m in members if self.c.indices[m].aliases[target].is_write_index]
            if writers:
                old = self.c.indices[writers[0]]
            elif len(members) == 1 and self.c.indices[members[0]].aliases[target].is_write_index is not False:
                old = self.c.indices[members[0]]
            else:
                raise illegal_argument(f"rollover target [{target}] does not point to a write index")
            new_name = req.path_params.get("new_index") or _next_rollover_name(old.name)
            conditions = body.get("conditions") or {}
            results = {}
            for key, value in conditions.items():
                results[f"[{key}: {value}]"] = _condition_met(old, key, value)
            max_met = [v for k, v in results.items() if not k.startswith("[min_")]
            min_met = [v for k, v in results.items() if k.startswith("[min_")]
            met = (not max_met or any(max_met)) and all(min_met)
            if new_name in self.c.indices:
                existing = self.c.indices[new_name]
                raise ESError(400, "resource_already_exists_exception",
                              f"index [{new_name}/{existing.uuid}] already exists", index_uuid=existing.uuid,
                              index=new_name)
            out = {"acknowledged": False, "shards_acknowledged": False, "old_index": old.name,
                   "new_index": new_name, "rolled_over": False, "dry_run": dry_run, "lazy": False,
                   "conditions": results}
            if dry_run or not met:
                return Response(200, out)
            meta = old.aliases[target]
            create_body = {k: v for k, v in body.items() if k in ("settings", "mappings", "aliases")}
            new_idx = self.c.create_index(new_name, create_body)
            if meta.is_write_index:
                old.aliases[target] = replace(meta, is_write_index=False)
                new_idx.aliases[target] = replace(meta, is_write_index=True)
            else:
                del old.aliases[target]
                new_idx.aliases[target] = replace(meta)
            out.update({"acknowledged": True, "shards_acknowledged": True, "rolled_over": True})
        return Response(200, out)

    # ------------------------------------------------------------------ aliases
    def put_alias(self, req: Request) -> Response:
        body = req.json_object()
        names = list(split_expression(req.path_params["name"]))
        with self.c.lock:
            self._apply_alias_actions([{"add": {**body, "index": req.path_params["index"], "aliases": names}}])
        return Response(200, dict(ACK))

    def delete_alias(self, req: Request) -> Response:
        with self.c.lock:
            indices = self.c.resolve(req.path_params["index"], STRICT_EXPAND_HIDDEN).indices
            patterns = split_expression(req.path_params["name"])
            removed = False
            for n in indices:
                idx = self.c.indices[n]
                for alias in list(idx.aliases):
                    if _alias_selected(alias, *_split_alias_patterns(patterns)):
                        del idx.aliases[alias]
                        removed = True
            if not removed:
                raise _aliases_missing(",".join(patterns))
        return Response(200, dict(ACK))

    def update_aliases(self, req: Request) -> Response:
        body = req.json_object(required=True)
        actions = body.get("actions")
        if set(body) - {"actions"}:
            raise ESError(400, "x_content_parse_exception",
                          f"[1:2] [aliases] unknown field [{sorted(set(body) - {'actions'})[0]}]")
        if not isinstance(actions, list) or not actions:
            raise action_request_validation("No action specified")
        with self.c.lock:
            results = self._apply_alias_actions(actions)
        out: dict[str, Any] = {"acknowledged": True, "errors": any(r["status"] != 200 for r in results)}
        if out["errors"]:
            out["action_results"] = results
        return Response(200, out)

    def _apply_alias_actions(self, actions: list[Any]) -> list[dict[str, Any]]:
        """Apply all actions atomically; returns per-action results (ES 8.14+ ``action_results``)."""
        parsed = [_parse_alias_action(a) for a in actions]
        backup = {n: copy.deepcopy(i.aliases) for n, i in self.c.indices.items()}
        results: list[dict[str, Any]] = []
        removed_indices: list[str] = []
        try:
            for kind, spec, index_exprs, alias_names in parsed:
                result = {"action": {"type": kind, "indices": index_exprs, "aliases": alias_names}, "status": 200}
                opts = IndicesOptions(expand_hidden=kind != "add" or any(
                    e.startswith(".") for e in index_exprs), allow_no_indices=False)
                if kind == "remove_index":
                    aliases_now = self.c.alias_map()
                    for expr in index_exprs:
                        if expr in aliases_now and expr not in self.c.indices:
                            raise illegal_argument(f"The provided expression [{expr}] matches an alias, specify "
                                                   "the corresponding concrete indices instead.")
                names = self.c.resolve(index_exprs, opts).indices
                if kind == "add":
                    for n in names:
                        for alias in alias_names:
                            self.c.add_alias(n, alias, spec)
                elif kind == "remove":
                    must_exist = spec.get("must_exist")
                    hit = False
                    for n in names:
                        idx = self.c.indices[n]
                        for alias in list(idx.aliases):
                            if any(a in ("_all", "*") or fnmatch.fnmatchcase(alias, a) for a in alias_names):
                                del idx.aliases[alias]
                                hit = True
                    if not hit:
                        err = _aliases_missing(",".join(alias_names))
                        if must_exist is True:
                            raise err
                        result["status"] = 404
                        result["error"] = err.error_object()
                else:
                    for n in names:
                        removed_indices.append(n)
                results.append(result)
            for n in removed_indices:
                self.c.indices.pop(n, None)
            for alias in self.c.alias_map():
                self.c._check_alias_consistency(alias)
            if results and all(r["status"] != 200 for r in results):
                raise _aliases_missing(",".join(a for r in results for a in r["action"]["aliases"]))
        except ESError:
            for n, aliases in backup.items():
                if n in self.c.indices:
                    self.c.indices[n].aliases = aliases
            raise
        return results

    def get_alias(self, req: Request) -> Response:
        wanted = split_expression(req.path_params.get("name"))
        index_expr = req.path_params.get("index")
        includes, excludes = _split_alias_patterns(wanted)
        with self.c.lock:
            opts = IndicesOptions(expand_hidden=True, expand_closed=True).from_params(req.params)
            names = self.c.resolve(index_expr, opts).indices
            out: dict[str, Any] = {}
            returned: set[str] = set()
            for n in sorted(names):
                idx = self.c.indices[n]
                matched = {}
                for alias, meta in sorted(idx.aliases.items()):
                    if not wanted or _alias_selected(alias, includes, excludes):
                        matched[alias] = meta.render()
                        returned.add(alias)
                if matched or not wanted:
                    out[n] = {"aliases": matched}
        missing = sorted(w for w in includes if not is_wildcard(w) and w != "_all" and w not in returned
                         and not any(fnmatch.fnmatchcase(w, e) for e in excludes))
        if missing:
            msg = f"alias [{missing[0]}] missing" if len(missing) == 1 else f"aliases [{','.join(missing)}] missing"
            return Response(404, {"error": msg, "status": 404, **out})
        return Response(200, out)

    def exists_alias(self, req: Request) -> Response:
        resp = self.get_alias(req)
        if resp.status != 200 or not any(v["aliases"] for v in resp.body.values()):
            return Response(404)
        return Response(200)

    # ------------------------------------------------------------------ templates
    def put_index_template(self, req: Request) -> Response:
        body = req.json_object(required=True)
        with self.c.lock:
            self.c.templates.put_index_template(req.path_params["name"], body, create=req.flag("create"))
        return Response(200, dict(ACK))

    def get_index_template(self, req: Request) -> Response:
        with self.c.lock:
            found = self.c.templates.get_index_templates(req.path_params.get("name"))
            return Response(200, {"index_templates": [{"name": n, "index_template": _render_template(b)}
                                                      for n, b in found]})

    def exists_index_template(self, req: Request) -> Response:
        with self.c.lock:
            try:
                self.c.templates.get_index_templates(req.path_params["name"])
            except ESError:
                return Response(404)
        return Response(200)

    def delete_index_template(self, req: Request) -> Response:
        with self.c.lock:
            self.c.templates.delete_index_template(req.path_params["name"])
        return Response(200, dict(ACK))

    def put_component_template(self, req: Request) -> Response:
        body = req.json_object(required=True)
        with self.c.lock:
            self.c.templates.put_component(req.path_params["name"], body, create=req.flag("create"))
        return Response(200, dict(ACK))

    def get_component_template(self, req: Request) -> Response:
        with self.c.lock:
            found = self.c.templates.get_components(req.path_params.get("name"))
            return Response(200, {"component_templates": [{"name": n, "component_template": _render_template(b)}
                                                          for n, b in found]})

    def exists_component_template(self, req: Request) -> Response:
        with self.c.lock:
            try:
                self.c.templates.get_components(req.path_params["name"])
            except ESError:
                return Response(404)
        return Response(200)

    def delete_component_template(self, req: Request) -> Response:
        with self.c.lock:
            self.c.templates.delete_component(req.path_params["name"])
        return Response(200, dict(ACK))

    def simulate_index(self, req: Request) -> Response:
        name = req.path_params["name"]
        with self.c.lock:
            found = self.c.templates.find(name, None)
            if found is None:
                return Response(200, {"overlapping": []})
            composed = self.c.templates.compose_template(found[1])
            from .templates import compose_mappings
            mapping = compose_mappings(composed.mappings)
            overlapping = []
            for other, body in sorted(self.c.templates.index_templates.items()):
                if other != found[0] and any(fnmatch.fnmatchcase(name, p) for p in body["index_patterns"]):
                    overlapping.append({"name": other, "index_patterns": body["index_patterns"]})
            settings = dict(composed.settings)
            return Response(200, {"template": {"settings": settings_mod.nest(settings),
                                               "mappings": mapping.to_body(),
                                               "aliases": {a: AliasMeta(**_alias_kwargs(s)).render()
                                                           for a, s in composed.aliases.items()}},
                                  "overlapping": overlapping})


def _alias_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    routing = spec.get("routing")
    return {"filter": spec.get("filter"), "index_routing": spec.get("index_routing", routing),
            "search_routing": spec.get("search_routing", routing), "is_write_index": spec.get("is_write_index"),
            "is_hidden": spec.get("is_hidden")}


def _render_template(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    tmpl = out.get("template")
    if isinstance(tmpl, dict) and isinstance(tmpl.get("settings"), dict):
        tmpl["settings"] = settings_mod.nest(settings_mod.flatten(tmpl["settings"]))
    return out


def _split_alias_patterns(wanted: list[str]) -> tuple[list[str], list[str]]:
    """ES's alias name list: ``-x`` excludes only after the first wildcard, else it is a plain name."""
    first_wildcard = next((i for i, w in enumerate(wanted) if is_wildcard(w)), None)
    includes, excludes = [], []
    for i, w in enumerate(wanted):
        if w.startswith("-") and first_wildcard is not None and i >= first_wildcard:
            excludes.append(w[1:])
        else:
            includes.append(w)
    return includes, excludes


def _alias_selected(alias: str, includes: list[str], excludes: list[str]) -> bool:
    if any(fnmatch.fnmatchcase(alias, e) for e in excludes):
        return False
    return any(w in ("_all", "*") or fnmatch.fnmatchcase(alias, w) for w in includes)


def _aliases_missing(names: str) -> ESError:
    extra: dict[str, Any] = {"resource.type": "aliases", "resource.id": names}
    return ESError(404, "aliases_not_found_exception", f"aliases [{names}] missing", **extra)


def _as_names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _parse_alias_action(action: Any) -> tuple[str, dict[str, Any], list[str], list[str]]:
    if not isinstance(action, dict) or len(action) != 1:
        raise illegal_argument("Expected a single action per object")
    kind, spec = next(iter(action.items()))
    if kind not in ("add", "remove", "remove_index"):
        raise ESError(400, "x_content_parse_exception", f"[1:13] [alias_action] unknown field [{kind}]")
    if not isinstance(spec, dict):
        raise illegal_argument(f"[{kind}] must be an object")
    indices = _as_names(spec.get("index")) + _as_names(spec.get("indices"))
    aliases = _as_names(spec.get("alias")) + _as_names(spec.get("aliases"))
    problems = []
    if not indices:
        problems.append("One of [index] or [indices] is required")
    if kind != "remove_index" and not aliases:
        problems.append("One of [alias] or [aliases] is required")
    if kind == "add" and "must_exist" in spec:
        raise illegal_argument("[must_exist] is unsupported for [ADD]")
    if kind == "remove_index" and "must_exist" in spec:
        raise illegal_argument("[must_exist] is unsupported for [REMOVE_INDEX]")
    if problems:
        raise action_request_validation(*problems)
    return kind, spec, indices, aliases


_ROLLOVER_RE = re.compile(r"^(.*-)(\d+)$")


def _next_rollover_name(old: str) -> str:
    m = _ROLLOVER_RE.match(old)
    if not m:
        raise illegal_argument(f"index name [{old}] does not match pattern '^.*-\\d+$'")
    return f"{m.group(1)}{int(m.group(2)) + 1:06d}"


_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4, "pb": 1024 ** 5}


def _condition_met(idx: IndexState, key: str, value: Any) -> bool:
    docs = len(idx.searchable)
    size = 225 + 300 * docs
    if key in ("max_docs", "max_primary_shard_docs"):
        return docs >= int(value)
    if key in ("min_docs", "min_primary_shard_docs"):
        return docs >= int(value)
    if key in ("max_age", "min_age"):
        age = settings_mod.parse_time(value, key) or 0.0
        return time.time() * 1000 - idx.creation_date >= age * 1000
    if key in ("max_size", "max_primary_shard_size", "min_size", "min_primary_shard_size"):
        m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", str(value).lower())
        if not m or m.group(2) not in _SIZE_UNITS:
            raise illegal_argument(f"failed to parse setting [{key}] with value [{value}] as a size in bytes")
        return size >= float(m.group(1)) * _SIZE_UNITS[m.group(2)]
    raise ESError(400, "x_content_parse_exception", f"[1:2] [conditions] unknown field [{key}]")


def _iso_millis(millis: int) -> str:
    stamp = datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


_DEFAULTS = {"index.refresh_interval": "1s", "index.max_result_window": "10000", "index.hidden": "false",
             "index.auto_expand_replicas": "false", "index.blocks.read_only": "false", "index.blocks.write": "false",
             "index.blocks.read_only_allow_delete": "false", "index.mapping.total_fields.limit": "1000",
             "index.mapping.depth.limit": "20", "index.codec": "default", "index.gc_deletes": "60s",
             "index.search.idle.after": "30s", "index.max_inner_result_window": "100"}


def _defaults(flat: bool, explicit: dict[str, Any]) -> dict[str, Any]:
    defaults = {k: v for k, v in _DEFAULTS.items() if k not in explicit}
    return defaults if flat else settings_mod.nest(defaults)

