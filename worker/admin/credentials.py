"""Least-privilege Elasticsearch credentials for lme-enrich: the role and an API key limited to it.

``setup(es)`` is run once by an administrator's client (LME: the ``elastic`` user). It creates the
role ``lme-enrich`` (for native users who should run the worker) and an API key whose only role is
that same descriptor, and returns the key in the encoded form ``LME_ENRICH_ES_API_KEY`` takes.
docs/deploy.md explains each privilege; deploy/elasticsearch/lme-enrich-role.json is the same body.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

ROLE_NAME: Final = "lme-enrich"
API_KEY_NAME: Final = "lme-enrich"
ALERTS_PATTERN: Final = ".alerts-security.alerts-*"
HISTORY_PATTERN: Final = "lme-ai-assessments*"
# Kibana's write alias ".alerts-security.alerts-<space>" points at ".internal.alerts-security.alerts-<space>-NNNNNN".
_ALIAS_PREFIX: Final = ".alerts-"
_BACKING_PREFIX: Final = ".internal.alerts-"

MappingPrivilege = Literal["write", "manage"]


def backing_pattern(alerts_pattern: str = ALERTS_PATTERN) -> str:
    """The backing-index pattern behind Kibana's alert alias pattern."""
    if not alerts_pattern.startswith(_ALIAS_PREFIX):
        raise ValueError(f"expected a Kibana alert alias pattern such as {ALERTS_PATTERN}, not {alerts_pattern!r}")
    return _BACKING_PREFIX + alerts_pattern.removeprefix(_ALIAS_PREFIX)


def role_body(alerts_pattern: str = ALERTS_PATTERN, *, put_mapping_via: MappingPrivilege = "write") -> dict[str, Any]:
    """Body of ``PUT /_security/role/lme-enrich`` (also a role descriptor of an API key).

    ``put_mapping_via="write"``: on 8.x the ``write`` index privilege still covers the update-mapping API
    on concrete indices (deprecated, to be removed in a future major); ``"manage"`` adds the privilege a
    later Elasticsearch will require, at the cost of index administration rights (including delete).
    """
    backing = ["read", "view_index_metadata", "write"]
    if put_mapping_via == "manage":
        backing.append("manage")
    return {
        # Our history index has an index template of its own; nothing else needs a cluster privilege.
        "cluster": ["manage_index_templates"],
        "indices": [
            {"names": [alerts_pattern], "privileges": ["read", "view_index_metadata"],
             "allow_restricted_indices": False},
            {"names": [backing_pattern(alerts_pattern)], "privileges": backing, "allow_restricted_indices": False},
            {"names": [HISTORY_PATTERN],
             "privileges": ["create_index", "read", "view_index_metadata", "write", "manage"],
             "allow_restricted_indices": False},
        ],
        "metadata": {"application": "lme-enrich",
                     "purpose": "read Kibana security alerts, write lme.ai.* assessments, keep the history"},
    }


def api_key_body(role: dict[str, Any], *, name: str = API_KEY_NAME, expiration: str | None = None) -> dict[str, Any]:
    """Body of ``POST /_security/api_key``: a key limited to ``role`` (never more than its creator has)."""
    body: dict[str, Any] = {
        "name": name,
        "role_descriptors": {ROLE_NAME: role},
        "metadata": {"application": "lme-enrich", "created_by": "lme-enrich setup-credentials"},
    }
    if expiration:
        body["expiration"] = expiration
    return body


def encoded_key(response: dict[str, Any]) -> str:
    """The ``encoded`` form (base64 of ``id:api_key``) from a create-API-key response."""
    if response.get("encoded"):
        return str(response["encoded"])
    raw = f"{response['id']}:{response['api_key']}".encode()
    return base64.b64encode(raw).decode("ascii")


def setup(es: Elasticsearch, *, alerts_pattern: str = ALERTS_PATTERN, name: str = API_KEY_NAME,
          expiration: str | None = None, put_mapping_via: MappingPrivilege = "write") -> str:
    """Create or update the role, create a new API key limited to it; return the encoded key.

    ``es`` must authenticate as a user with ``manage_security`` (LME: ``elastic``). The role update is
    idempotent; every call makes a new key (invalidate old ones with ``DELETE /_security/api_key``).
    """
    role = role_body(alerts_pattern, put_mapping_via=put_mapping_via)
    es.security.put_role(name=ROLE_NAME, **role)
    response = es.security.create_api_key(**api_key_body(role, name=name, expiration=expiration))
    return encoded_key(dict(response.body))
