"""Composable index templates and component templates, applied on explicit and automatic index creation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError


@pytest.fixture
def tpl(index_name: str, es: Elasticsearch) -> Iterator[str]:
    """A name prefix for templates; every template and component template it prefixes is removed afterwards."""
    yield index_name
    found = es.options(ignore_status=404).indices.get_index_template(name=f"{index_name}*")
    for t in found.get("index_templates", []) if found.meta.status == 200 else []:
        es.options(ignore_status=404).indices.delete_index_template(name=t["name"])
    comps = es.options(ignore_status=404).cluster.get_component_template(name=f"{index_name}*")
    for c in comps.get("component_templates", []) if comps.meta.status == 200 else []:
        es.options(ignore_status=404).cluster.delete_component_template(name=c["name"])


def test_composition_order_and_request_wins(es: Elasticsearch, tpl: str) -> None:
    es.cluster.put_component_template(name=f"{tpl}-c1", template={
        "settings": {"index.refresh_interval": "7s", "number_of_replicas": 0},
        "mappings": {"properties": {"a": {"type": "keyword"}, "b": {"type": "keyword"}}}})
    es.cluster.put_component_template(name=f"{tpl}-c2", template={
        "mappings": {"properties": {"b": {"type": "long"}}}, "aliases": {f"{tpl}-from-comp": {}}})
    es.indices.put_index_template(name=f"{tpl}-t", index_patterns=[f"{tpl}-x-*"], priority=10,
                                  composed_of=[f"{tpl}-c1", f"{tpl}-c2"],
                                  template={"settings": {"index.refresh_interval": "9s"},
                                            "mappings": {"properties": {"c": {"type": "date"}}}})
    es.indices.create(index=f"{tpl}-x-1", settings={"index.refresh_interval": "11s"})
    got = es.indices.get(index=f"{tpl}-x-1")[f"{tpl}-x-1"]
    assert got["settings"]["index"]["refresh_interval"] == "11s"
    assert got["settings"]["index"]["number_of_replicas"] == "0"
    assert got["mappings"]["properties"] == {"a": {"type": "keyword"}, "b": {"type": "long"}, "c": {"type": "date"}}
    assert got["aliases"] == {f"{tpl}-from-comp": {}}
    es.index(index=f"{tpl}-x-2", id="1", document={"a": "auto"})
    auto = es.indices.get(index=f"{tpl}-x-2")[f"{tpl}-x-2"]
    assert auto["settings"]["index"]["refresh_interval"] == "9s"
    assert auto["mappings"]["properties"]["b"] == {"type": "long"}


def test_highest_priority_wins(es: Elasticsearch, tpl: str) -> None:
    es.indices.put_index_template(name=f"{tpl}-low", index_patterns=[f"{tpl}-p*"], priority=1,
                                  template={"settings": {"number_of_replicas": 0}})
    es.indices.put_index_template(name=f"{tpl}-high", index_patterns=[f"{tpl}-p-*"], priority=2,
                                  template={"settings": {"number_of_replicas": 0, "index.refresh_interval": "3s"}})
    es.indices.create(index=f"{tpl}-p-1")
    assert es.indices.get_settings(index=f"{tpl}-p-1")[f"{tpl}-p-1"]["settings"]["index"]["refresh_interval"] == "3s"
    sim = es.indices.simulate_index_template(name=f"{tpl}-p-2")
    assert sim["template"]["settings"]["index"]["refresh_interval"] == "3s"
    assert {o["name"] for o in sim["overlapping"]} == {f"{tpl}-low"}


def test_same_priority_overlap_is_refused(es: Elasticsearch, tpl: str) -> None:
    es.indices.put_index_template(name=f"{tpl}-a", index_patterns=[f"{tpl}-o-*"], priority=3)
    with pytest.raises(BadRequestError) as err:
        es.indices.put_index_template(name=f"{tpl}-b", index_patterns=[f"{tpl}-o-x*"], priority=3)
    assert err.value.body["error"]["type"] == "illegal_argument_exception"
    assert "multiple index templates may not match during index creation" in err.value.body["error"]["reason"]


def test_get_and_delete_templates(es: Elasticsearch, tpl: str) -> None:
    es.cluster.put_component_template(name=f"{tpl}-comp", template={"settings": {"number_of_replicas": 0}})
    es.indices.put_index_template(name=f"{tpl}-it", index_patterns=[f"{tpl}-g-*"], composed_of=[f"{tpl}-comp"],
                                  priority=4)
    got = es.indices.get_index_template(name=f"{tpl}-it")["index_templates"][0]
    assert got["name"] == f"{tpl}-it"
    assert got["index_template"]["index_patterns"] == [f"{tpl}-g-*"]
    assert got["index_template"]["composed_of"] == [f"{tpl}-comp"]
    comp = es.cluster.get_component_template(name=f"{tpl}-comp")["component_templates"][0]
    assert comp["component_template"]["template"]["settings"] == {"index": {"number_of_replicas": "0"}}
    with pytest.raises(BadRequestError):
        es.cluster.delete_component_template(name=f"{tpl}-comp")      # still in use
    es.indices.delete_index_template(name=f"{tpl}-it")
    es.cluster.delete_component_template(name=f"{tpl}-comp")
    with pytest.raises(NotFoundError):
        es.indices.get_index_template(name=f"{tpl}-it")
    with pytest.raises(NotFoundError):
        es.indices.delete_index_template(name=f"{tpl}-it")


def test_missing_component_is_refused(es: Elasticsearch, tpl: str) -> None:
    with pytest.raises(BadRequestError) as err:
        es.indices.put_index_template(name=f"{tpl}-m", index_patterns=[f"{tpl}-m-*"], composed_of=[f"{tpl}-nope"])
    assert err.value.body["error"]["type"] == "invalid_index_template_exception"
