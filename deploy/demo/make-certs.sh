#!/usr/bin/env bash
# Demo only: a CA and server certificates laid out as LME's lme_certs volume (ca/ca.crt, <name>/<name>.crt|.key),
# made with Elasticsearch's own certutil, as LME does. Runs in the elasticsearch image as root; idempotent.
set -euo pipefail

certs="${1:-/certs}"
certutil=/usr/share/elasticsearch/bin/elasticsearch-certutil
if [[ -s "$certs/ca/ca.crt" && -s "$certs/lme-litellm/lme-litellm.key" ]]; then
  echo "demo certificates already present in $certs"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$certutil" ca --silent --pem --out "$work/ca.zip"
unzip -q -o "$work/ca.zip" -d "$certs"
cat > "$work/instances.yml" <<'YAML'
instances:
  - name: lme-elasticsearch
    dns: [lme-elasticsearch, elasticsearch, localhost]
    ip: [127.0.0.1]
  - name: lme-kibana
    dns: [lme-kibana, kibana, localhost]
    ip: [127.0.0.1]
  - name: lme-litellm
    dns: [lme-litellm, litellm, localhost]
    ip: [127.0.0.1]
YAML
"$certutil" cert --silent --pem --in "$work/instances.yml" --out "$work/certs.zip" \
  --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key"
unzip -q -o "$work/certs.zip" -d "$certs"
# Readable certificates for every client (lme-enrich runs as uid 10001); keys for root and group 0 only
# (Elasticsearch and Kibana run as uid 1000, gid 0); the CA key for root alone.
chown -R root:root "$certs"
find "$certs" -type d -exec chmod 0755 {} +
find "$certs" -name '*.crt' -exec chmod 0644 {} +
find "$certs" -name '*.key' -exec chmod 0640 {} +
chmod 0600 "$certs/ca/ca.key"
echo "demo certificates written to $certs"
