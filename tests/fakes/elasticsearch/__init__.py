"""An Elasticsearch 8.18-compatible test server: ``python -m tests.fakes.elasticsearch``.

Server half: ``server`` (HTTP/1.1, TLS, auth, faults, media types), ``routing`` (ES-style path router),
``api*`` (REST handlers), ``cluster`` (indices, aliases, refresh, PITs), ``expressions`` (index
expressions), ``templates``, ``documents``, ``bulk``, ``painless`` (update-script subset), ``faults``,
``profiling`` (the opt-in ``--profile FILE``).
Search half (called through a small interface): ``mapping``, ``query``, ``search``, ``aggs`` ...
"""
