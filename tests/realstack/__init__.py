"""Tests and launchers against real services (a real Elasticsearch node, ...)."""
