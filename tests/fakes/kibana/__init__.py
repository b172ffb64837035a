"""A Kibana 8.18 test double with only what ``lme-enrich kibana install`` uses.

``GET /api/status``, ``POST /api/saved_objects/_import`` and ``GET``/``POST /api/kibana/settings`` with
Kibana's status codes and bodies (see ``contract.json`` for each shape and where it comes from), basic and
ApiKey authentication, the ``kbn-xsrf`` check, TLS, and a slow start (``--not-ready-for``). Imported
objects and settings are kept in memory; ``GET /_fake/state`` shows them to tests.
"""
