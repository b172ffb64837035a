"""End-to-end: point-in-time searches and their implicit `_shard_doc` tiebreaker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch


@pytest.fixture
def pit(es: Elasticsearch, index_name: str) -> Iterator[str]:
    es.indices.create(index=index_name, mappings={"properties": {"g": {"type": "keyword"}}})
    ops: list[dict[str, Any]] = []
    for i in range(9):
        ops += [{"index": {"_index": index_name, "_id": f"d{i}"}}, {"g": "even" if i % 2 == 0 else "odd"}]
    assert not es.bulk(operations=ops, refresh=True)["errors"]
    pit_id = es.open_point_in_time(index=index_name, keep_alive="1m")["id"]
    yield pit_id
    es.close_point_in_time(id=pit_id)


def test_pit_without_sort_has_no_sort_values(es: Elasticsearch, pit: str) -> None:
    resp = es.search(pit={"id": pit}, size=3)
    assert all("sort" not in h for h in resp["hits"]["hits"])
    assert resp["hits"]["total"]["value"] == 9


def test_pit_sort_adds_tiebreaker_and_pages_ties(es: Elasticsearch, pit: str) -> None:
    seen: list[str] = []
    after: list[Any] | None = None
    while True:
        extra: dict[str, Any] = {"search_after": after} if after is not None else {}
        hits = es.search(pit={"id": pit}, size=2, sort=[{"g": "asc"}], **extra)["hits"]["hits"]
        if not hits:
            break
        for h in hits:
            assert len(h["sort"]) == 2 and isinstance(h["sort"][1], int)
            seen.append(h["_id"])
        after = hits[-1]["sort"]
    assert sorted(seen) == [f"d{i}" for i in range(9)]
    assert len(set(seen)) == 9
    assert {int(x[1:]) % 2 for x in seen[:5]} == {0}  # "even" sorts before "odd"
    assert {int(x[1:]) % 2 for x in seen[5:]} == {1}


def test_explicit_shard_doc_sort_and_no_pit_refusal(es: Elasticsearch, pit: str, index_name: str) -> None:
    resp = es.search(pit={"id": pit}, size=9, sort=[{"_shard_doc": "desc"}])
    values = [h["sort"][0] for h in resp["hits"]["hits"]]
    assert values == sorted(values, reverse=True) and len(values) == 9
    with pytest.raises(BadRequestError) as info:
        es.search(index=index_name, sort=["_shard_doc"])
    assert "[_shard_doc] sort field cannot be used without [point in time]" in str(info.value.body)
