"""The alert documents in Elasticsearch: reading, field names, claiming, history."""
