#!/usr/bin/env bash
# Create the secret files compose.yaml reads (random values), unless they exist. Run once from the repo root:
#   deploy/demo/make-secrets.sh [DIR]        (default ./secrets)
# Files are 0644 inside a 0700 directory: containers read them through bind mounts as their own users.
set -euo pipefail

dir="${1:-./secrets}"
mkdir -p "$dir"
chmod 0700 "$dir"

random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

ensure_secret() {
  local file="$dir/$1" value="$2"
  if [[ -s "$file" ]]; then
    echo "kept    $file"
  else
    printf '%s\n' "$value" > "$file"
    echo "created $file"
  fi
  chmod 0644 "$file"
}

ensure_secret elastic_password "$(random)"
ensure_secret kibana_system_password "$(random)"
ensure_secret kibana_encryption_key "$(random)"
ensure_secret llm_api_key "sk-$(random)"
# The credential lme-enrich uses. The demo starts with the elastic password (.env.example says so);
# replace this file's content with an API key from `lme-enrich setup-credentials` for least privilege.
if [[ ! -s "$dir/es_credential" ]]; then
  cp "$dir/elastic_password" "$dir/es_credential"
  echo "created $dir/es_credential (a copy of elastic_password)"
fi
chmod 0644 "$dir/es_credential"
