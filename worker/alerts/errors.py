"""The store's error, in a module of its own: the CLI catches it without importing the Elasticsearch client."""

from __future__ import annotations


class StoreError(Exception):
    """Elasticsearch did not let us do something; the message says what and what to check."""
