"""Near-real-time visibility: search and count see the last refresh; GET is realtime."""

from __future__ import annotations

import time

from elasticsearch import Elasticsearch

from tests.es_server.rawhttp import wait_until


def _count(es: Elasticsearch, index: str) -> int:
    return int(es.count(index=index)["count"])


def test_write_invisible_until_refresh_when_interval_is_minus_one(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "-1"})
    es.index(index=index_name, id="1", document={"a": 1})
    assert _count(es, index_name) == 0
    assert es.search(index=index_name)["hits"]["total"]["value"] == 0
    assert es.get(index=index_name, id="1")["found"] is True      # GET is realtime
    es.indices.refresh(index=index_name)
    assert _count(es, index_name) == 1


def test_periodic_refresh_makes_write_visible_at_next_tick(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "1s"})
    written = time.monotonic()
    es.index(index=index_name, id="1", document={"a": 1})
    assert _count(es, index_name) == 0
    wait_until(lambda: _count(es, index_name) == 1, timeout=5)
    assert time.monotonic() - written < 3.0


def test_refresh_true_and_wait_for(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "200ms"})
    es.index(index=index_name, id="1", document={"a": 1}, refresh=True)
    assert _count(es, index_name) == 1
    resp = es.index(index=index_name, id="2", document={"a": 2}, refresh="wait_for")
    assert "forced_refresh" not in resp or resp["forced_refresh"] is False
    assert _count(es, index_name) == 2
    es.delete(index=index_name, id="1", refresh="wait_for")
    assert _count(es, index_name) == 1


def test_setting_refresh_interval_to_minus_one_stops_ticks(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "100ms"})
    es.indices.put_settings(index=index_name, settings={"index.refresh_interval": "-1"})
    assert es.indices.get_settings(index=index_name)[index_name]["settings"]["index"]["refresh_interval"] == "-1"
    es.index(index=index_name, id="1", document={"a": 1})
    es.index(index=index_name, id="2", document={"a": 1}, refresh=True)
    assert _count(es, index_name) == 2
    es.index(index=index_name, id="3", document={"a": 1})
    assert _count(es, index_name) == 2
    es.indices.put_settings(index=index_name, settings={"index.refresh_interval": "100ms"})
    wait_until(lambda: _count(es, index_name) == 3, timeout=5)


def test_update_and_delete_follow_refresh_too(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "-1"})
    es.index(index=index_name, id="1", document={"tag": "old"}, refresh=True)
    es.update(index=index_name, id="1", doc={"tag": "new"})
    hits = es.search(index=index_name, query={"term": {"tag.keyword": "new"}})["hits"]["hits"]
    assert hits == []
    assert es.get(index=index_name, id="1")["_source"]["tag"] == "new"
    es.indices.refresh(index=index_name)
    hits = es.search(index=index_name, query={"term": {"tag.keyword": "new"}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]
    es.delete(index=index_name, id="1")
    assert _count(es, index_name) == 1
    es.indices.refresh(index=index_name)
    assert _count(es, index_name) == 0
