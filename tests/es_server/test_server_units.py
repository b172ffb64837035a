"""Pure unit tests of the server's helpers (no HTTP): filter_path, names, routing hash, expressions, templates."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.fakes.elasticsearch import filter_path
from tests.fakes.elasticsearch.errors import ESError
from tests.fakes.elasticsearch.expressions import AliasMeta, IndicesOptions, resolve
from tests.fakes.elasticsearch.names import auto_id, resolve_date_math, validate_index_name
from tests.fakes.elasticsearch.routing_hash import murmur3_32, shard_id
from tests.fakes.elasticsearch.templates import globs_intersect


def test_filter_path_include_exclude_and_double_star() -> None:
    body = {"a": {"b": 1, "c": {"d": 2}}, "hits": [{"x": 1, "y": 2}, {"x": 3}], "e": 5}
    assert filter_path.apply(body, "a.b") == {"a": {"b": 1}}
    assert filter_path.apply(body, "**.d") == {"a": {"c": {"d": 2}}}
    assert filter_path.apply(body, "hits.x") == {"hits": [{"x": 1}, {"x": 3}]}
    assert filter_path.apply(body, "-a,-hits") == {"e": 5}
    assert filter_path.apply(body, "nothing") == {}


@pytest.mark.parametrize("name", ["a*", "A", "_x", "a,b", "a b", "a#b", "..", "a:b", "x" * 256])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ESError) as err:
        validate_index_name(name)
    assert err.value.type == "invalid_index_name_exception"


def test_auto_ids_are_unique_and_20_chars() -> None:
    ids = {auto_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 20 for i in ids)


def test_date_math_names() -> None:
    assert resolve_date_math("<logs_{2022-12-31||/d{yyyy-MM-dd}}>") == "logs_2022-12-31"
    assert resolve_date_math("plain") == "plain"


def test_murmur3_matches_lucene_and_routing() -> None:
    assert murmur3_32(b"hello") == 613153351
    assert murmur3_32(b"") == 0
    # ES's own routing test values (ids "1" and "3" land on different shards of a 5-shard index).
    assert shard_id("1", 5, 5) != shard_id("3", 5, 5)
    assert shard_id("anything", 1) == 0


def test_globs_intersect() -> None:
    assert globs_intersect("logs-*", "logs-a*")
    assert globs_intersect("*-x", "a-*")
    assert not globs_intersect("logs-*", "metrics-*")
    assert not globs_intersect("abc", "abd")


@dataclass
class _Idx:
    hidden: bool = False
    closed: bool = False
    aliases: dict[str, AliasMeta] = field(default_factory=dict)


def test_resolve_rules() -> None:
    indices = {
        "logs-a": _Idx(), "logs-b": _Idx(), "logs-c": _Idx(closed=True),
        ".internal-1": _Idx(hidden=True, aliases={".alias": AliasMeta(is_write_index=True, is_hidden=True)}),
    }
    opts = IndicesOptions()
    assert resolve(indices, "logs-*", opts).indices == ["logs-a", "logs-b"]
    assert resolve(indices, "logs-*,-logs-a", opts).indices == ["logs-b"]
    assert resolve(indices, ".al*", opts).indices == [".internal-1"]
    assert resolve(indices, "*", opts).indices == ["logs-a", "logs-b"]
    assert ".internal-1" in resolve(indices, "*", opts.from_params({"expand_wildcards": "all"})).indices
    with pytest.raises(ESError):
        resolve(indices, "missing", opts)
    assert resolve(indices, "missing,logs-a", opts.from_params({"ignore_unavailable": "true"})).indices == ["logs-a"]
    with pytest.raises(ESError):
        resolve(indices, "nope-*", opts.from_params({"allow_no_indices": "false"}))
