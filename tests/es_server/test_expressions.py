"""Index expressions: lists, wildcards, exclusions, aliases, hidden and closed indices, per-API defaults."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError


def _indices(es: Elasticsearch, expr: str, **kw: object) -> set[str]:
    hits = es.search(index=expr, size=100, **kw)["hits"]["hits"]  # type: ignore[arg-type]
    return {h["_index"] for h in hits}


@pytest.fixture
def three(es: Elasticsearch, index_name: str) -> str:
    for suffix in ("a", "b", "c"):
        es.index(index=f"{index_name}-{suffix}", id="1", document={"s": suffix}, refresh=True)
    return index_name


def test_comma_list_and_wildcard(es: Elasticsearch, three: str) -> None:
    assert _indices(es, f"{three}-a,{three}-c") == {f"{three}-a", f"{three}-c"}
    assert _indices(es, f"{three}-*") == {f"{three}-a", f"{three}-b", f"{three}-c"}


def test_exclusion_after_wildcard(es: Elasticsearch, three: str) -> None:
    assert _indices(es, f"{three}-*,-{three}-b") == {f"{three}-a", f"{three}-c"}
    assert _indices(es, f"{three}-*,-{three}-a*,-{three}-c") == {f"{three}-b"}


def test_missing_concrete_index_and_ignore_unavailable(es: Elasticsearch, three: str) -> None:
    with pytest.raises(NotFoundError) as err:
        es.search(index=f"{three}-a,{three}-zzz")
    assert err.value.body["error"]["type"] == "index_not_found_exception"
    assert err.value.body["error"]["index"] == f"{three}-zzz"
    assert _indices(es, f"{three}-a,{three}-zzz", ignore_unavailable=True) == {f"{three}-a"}


def test_allow_no_indices(es: Elasticsearch, three: str) -> None:
    empty = es.search(index=f"{three}-nothing-*")
    assert empty["hits"]["total"]["value"] == 0 and empty["_shards"]["total"] == 0
    with pytest.raises(NotFoundError):
        es.search(index=f"{three}-nothing-*", allow_no_indices=False)
    assert es.count(index=f"{three}-nothing-*")["count"] == 0


def test_hidden_index_needs_expand_wildcards(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-hid", settings={"index.hidden": True})
    es.index(index=f"{index_name}-hid", id="1", document={"a": 1}, refresh=True)
    es.index(index=f"{index_name}-vis", id="1", document={"a": 1}, refresh=True)
    assert _indices(es, f"{index_name}-*") == {f"{index_name}-vis"}
    assert _indices(es, f"{index_name}-*", expand_wildcards="all") == {f"{index_name}-vis", f"{index_name}-hid"}
    assert _indices(es, f"{index_name}-*", expand_wildcards="open,hidden") == {
        f"{index_name}-vis", f"{index_name}-hid"}
    assert _indices(es, f"{index_name}-hid") == {f"{index_name}-hid"}      # named explicitly


def test_dot_pattern_matches_hidden_dot_indices(es: Elasticsearch, index_name: str) -> None:
    name = f".{index_name}-dotted"
    try:
        es.indices.create(index=name, settings={"index.hidden": True})
        es.index(index=name, id="1", document={"a": 1}, refresh=True)
        assert _indices(es, f".{index_name}-*") == {name}
        assert name not in _indices(es, "*")
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


def test_closed_index_excluded_from_wildcards(es: Elasticsearch, three: str) -> None:
    es.indices.close(index=f"{three}-b")
    assert _indices(es, f"{three}-*") == {f"{three}-a", f"{three}-c"}
    with pytest.raises(BadRequestError) as err:
        es.search(index=f"{three}-b")
    assert err.value.body["error"]["type"] == "index_closed_exception"
    assert _indices(es, f"{three}-b,{three}-a", ignore_unavailable=True) == {f"{three}-a"}


def test_expand_wildcards_none(es: Elasticsearch, three: str) -> None:
    assert _indices(es, f"{three}-*", expand_wildcards="none", ignore_unavailable=True) == set()
    with pytest.raises(NotFoundError):
        es.search(index=f"{three}-*", expand_wildcards="none")


def test_alias_in_expression_reports_concrete_index(es: Elasticsearch, three: str) -> None:
    es.indices.put_alias(index=f"{three}-a", name=f"{three}-al")
    assert _indices(es, f"{three}-al") == {f"{three}-a"}
    assert _indices(es, f"{three}-al,{three}-b") == {f"{three}-a", f"{three}-b"}
