"""These are the Elasticsearch test server's own tests: they run against it whatever LME_ENRICH_TEST_ES says,
or against the external cluster of ES_URL (they are written to pass on real Elasticsearch too)."""

from __future__ import annotations

from tests.es_backends import on_test_server

es_url, es = on_test_server(external=True)
