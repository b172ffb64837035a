#!/usr/bin/env bash
# Install lme-enrich on an LME 2.x server as rootful Podman quadlets next to LME's own, or remove it again.
#
#   sudo deploy/install-lme.sh [options]              install (or update) and start
#   sudo deploy/install-lme.sh --uninstall [--purge]  stop and remove what this script added; LME is untouched
#
# Options:
#   --dry-run               print every step instead of doing it (needs neither root, systemd nor podman)
#   --image-archive FILE    load the lme-enrich image from FILE (podman save) instead of building it
#   --rebuild               build the image even if localhost/lme-enrich:latest exists
#   --llm-key-file FILE     LiteLLM key to use (default: master_key from /opt/lme/config/litellm_config.yaml)
#   --elastic-superuser     use LME's `elastic` secret instead of creating a least-privilege API key
#   --rotate-key            create a new API key even if the lme-enrich-es-api-key secret exists
#   --no-start              install but do not start the services
#   --purge                 with --uninstall: also remove Redis data, beat state, our network and the image
#
# Idempotent: run it again after `git pull` to update. Long form: docs/deploy.md.
set -euo pipefail

IMAGE=localhost/lme-enrich:latest
REDIS_IMAGE=docker.io/library/redis:7.4.2-alpine
QUADLET_DIR="${LME_ENRICH_QUADLET_DIR:-/etc/containers/systemd}"
LME_CONFIG_DIR="${LME_CONFIG_DIR:-/opt/lme/config}"
SETTINGS_FILE="$LME_CONFIG_DIR/lme-enrich.env"
LITELLM_CONFIG="$LME_CONFIG_DIR/litellm_config.yaml"
ES_KEY_SECRET=lme-enrich-es-api-key
LLM_KEY_SECRET=lme-enrich-llm-api-key
CA_MOUNT=/run/secrets/lme_certs
SERVICES=(lme-enrich-redis.service lme-enrich-poll.service lme-enrich-assess.service lme-enrich-beat.service)
# Units quadlet generates from our .network/.volume files; stopped on uninstall.
SUPPORT_SERVICES=(lme-enrich-network.service lme-enrich-redis-volume.service lme-enrich-beat-volume.service)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
units=(lme-enrich.network lme-enrich-redis.volume lme-enrich-beat.volume lme-enrich-redis.container
       lme-enrich-poll.container lme-enrich-assess.container lme-enrich-beat.container)

dry_run=false uninstall=false purge=false rebuild=false elastic_superuser=false rotate_key=false start=true
image_archive="" llm_key_file=""

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "install-lme: $*" >&2; exit 1; }
say() { echo "install-lme: $*"; }

while (($#)); do
  case "$1" in
    --dry-run) dry_run=true ;;
    --uninstall) uninstall=true ;;
    --purge) purge=true ;;
    --rebuild) rebuild=true ;;
    --elastic-superuser) elastic_superuser=true ;;
    --rotate-key) rotate_key=true ;;
    --no-start) start=false ;;
    --image-archive) image_archive="${2:?--image-archive needs a file}"; shift ;;
    --llm-key-file) llm_key_file="${2:?--llm-key-file needs a file}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done
if $purge && ! $uninstall; then die "--purge goes with --uninstall"; fi

# Our secrets use Podman's file driver, as LME's own llm-keys and pgvector do (root-only files under
# /var/lib/containers/storage/secrets/), not the shell driver LME configures for its vault.

# Every change goes through run (or a function that checks $dry_run), so --dry-run shows the whole plan.
run() {
  if $dry_run; then
    echo "[dry-run] $*"
  else
    "$@"
  fi
}

# Queries: in a dry run nothing is asked, and everything is assumed absent (the full plan is shown).
have_image() { ! $dry_run && podman image exists "$1"; }
have_secret() { ! $dry_run && podman secret inspect "$1" >/dev/null 2>&1; }

preflight() {
  if $dry_run; then
    return
  fi
  [[ $EUID -eq 0 ]] || die "run as root: LME's containers are rootful Podman quadlets"
  command -v podman >/dev/null || die "podman not found (LME installs it; try: source ~/.profile)"
  command -v systemctl >/dev/null || die "systemctl not found"
  podman network exists lme || die "Podman network 'lme' not found: is LME installed on this host?"
  podman volume exists lme_certs || die "Podman volume 'lme_certs' not found: is LME installed on this host?"
}

check_ca_readable() {
  $dry_run && return
  local ca
  ca="$(podman volume inspect lme_certs --format '{{.Mountpoint}}')/ca/ca.crt"
  if [[ ! -f "$ca" ]]; then
    say "warning: $ca not found; set LME_ENRICH_ES_CA_CERT in $SETTINGS_FILE"
  elif [[ $(( 8#$(stat -c '%a' "$ca") & 8#004 )) -eq 0 ]]; then
    say "warning: $ca is not world-readable; lme-enrich runs as uid 10001 and must read it (chmod o+r)"
  fi
}

install_image() {
  if [[ -n "$image_archive" ]]; then
    run podman load --input "$image_archive"
  elif $rebuild || ! have_image "$IMAGE"; then
    run podman build --format docker --tag "$IMAGE" --file "$repo/Containerfile" "$repo"
  else
    say "image $IMAGE present (--rebuild to build it again)"
  fi
  if ! have_image "$REDIS_IMAGE"; then
    run podman pull "$REDIS_IMAGE"
  fi
}

install_units() {
  run mkdir -p "$QUADLET_DIR"
  local unit
  for unit in "${units[@]}"; do
    if $elastic_superuser && [[ $unit == *.container && $unit != lme-enrich-redis.container ]]; then
      # LME's own superuser secret (what its dashboard uses) instead of our API key.
      if $dry_run; then
        echo "[dry-run] install $here/quadlet/$unit -> $QUADLET_DIR/$unit (ES credential: LME's elastic secret)"
      else
        sed -e "s|^Secret=$ES_KEY_SECRET,.*|Secret=elastic,type=mount,target=/run/secrets/elastic,uid=10001,gid=10001,mode=0400|" \
            -e "s|^Environment=LME_ENRICH_ES_API_KEY_FILE=.*|Environment=LME_ENRICH_ES_USERNAME=elastic LME_ENRICH_ES_PASSWORD_FILE=/run/secrets/elastic|" \
            "$here/quadlet/$unit" > "$QUADLET_DIR/$unit.tmp"
        chmod 0644 "$QUADLET_DIR/$unit.tmp"
        mv "$QUADLET_DIR/$unit.tmp" "$QUADLET_DIR/$unit"
      fi
    else
      run install -m 0644 "$here/quadlet/$unit" "$QUADLET_DIR/$unit"
    fi
  done
  if [[ -e "$SETTINGS_FILE" ]]; then
    say "keeping your settings in $SETTINGS_FILE"
  else
    run install -m 0600 "$here/quadlet/lme-enrich.env" "$SETTINGS_FILE"
  fi
}

# The LiteLLM key: a file the admin names, else the master key in LME's LiteLLM config.
llm_key() {
  if [[ -n "$llm_key_file" ]]; then
    tr -d '\r\n' < "$llm_key_file"
    return
  fi
  [[ -r "$LITELLM_CONFIG" ]] || die "cannot read $LITELLM_CONFIG; pass --llm-key-file FILE"
  local key
  key="$(sed -n 's/^[[:space:]]*master_key:[[:space:]]*["'\'']\{0,1\}\([^"'\''[:space:]]*\).*/\1/p' "$LITELLM_CONFIG" | head -n 1)"
  [[ -n "$key" ]] || die "no master_key in $LITELLM_CONFIG; pass --llm-key-file FILE"
  [[ $key != os.environ/* ]] || die "LiteLLM's master_key comes from ${key#os.environ/}; pass --llm-key-file FILE"
  printf '%s' "$key"
}

create_llm_secret() {
  if have_secret "$LLM_KEY_SECRET"; then
    say "secret $LLM_KEY_SECRET present"
  elif $dry_run; then
    echo "[dry-run] podman secret create --driver file $LLM_KEY_SECRET - (from ${llm_key_file:-master_key in $LITELLM_CONFIG})"
  else
    llm_key | podman secret create --driver file "$LLM_KEY_SECRET" - >/dev/null
    say "created secret $LLM_KEY_SECRET"
  fi
}

# The least-privilege API key, made once by lme-enrich itself logged in as elastic (LME's secret, read by
# Podman; this script never sees the password). Its encoded form goes straight into our secret.
create_es_secret() {
  if $elastic_superuser; then
    say "using LME's elastic secret for Elasticsearch (--elastic-superuser)"
    return
  fi
  if have_secret "$ES_KEY_SECRET" && ! $rotate_key; then
    say "secret $ES_KEY_SECRET present (--rotate-key for a new key)"
    return
  fi
  local setup=(podman run --rm --network lme --volume "lme_certs:$CA_MOUNT:ro"
               --secret "elastic,type=env,target=LME_ENRICH_ES_PASSWORD"
               --secret "$LLM_KEY_SECRET,type=env,target=LME_ENRICH_LLM_API_KEY"
               --env LME_ENRICH_ES_USERNAME=elastic --env "LME_ENRICH_ES_CA_CERT=$CA_MOUNT/ca/ca.crt"
               --env "LME_ENRICH_LLM_CA_CERT=$CA_MOUNT/ca/ca.crt" "$IMAGE" setup-credentials)
  if $dry_run; then
    if $rotate_key; then
      echo "[dry-run] podman secret rm $ES_KEY_SECRET"
    fi
    echo "[dry-run] ${setup[*]} | podman secret create --driver file $ES_KEY_SECRET -"
    return
  fi
  local key
  key="$("${setup[@]}")" || die "lme-enrich setup-credentials failed (see above); or use --elastic-superuser"
  [[ -n "$key" ]] || die "lme-enrich setup-credentials printed no key"
  if have_secret "$ES_KEY_SECRET"; then
    podman secret rm "$ES_KEY_SECRET" >/dev/null
  fi
  printf '%s' "$key" | podman secret create --driver file "$ES_KEY_SECRET" - >/dev/null
  say "created secret $ES_KEY_SECRET (an API key limited to the lme-enrich role)"
}

do_install() {
  preflight
  check_ca_readable
  install_image
  install_units
  create_llm_secret
  create_es_secret
  run systemctl daemon-reload
  if $start; then
    # restart, not start: a re-run after an update must pick up new units and a new image.
    run systemctl restart "${SERVICES[@]}"
    if ! $dry_run; then
      say "started: ${SERVICES[*]}"
      say "check: systemctl status lme-enrich-poll; podman logs -f lme-enrich-assess"
    fi
  fi
}

do_uninstall() {
  if ! $dry_run; then
    [[ $EUID -eq 0 ]] || die "run as root"
  fi
  # Ours only: never lme.service, LME's units, its network "lme", the lme_certs volume or the elastic secret.
  run systemctl stop "${SERVICES[@]}" "${SUPPORT_SERVICES[@]}" || true
  local unit
  for unit in "${units[@]}"; do
    run rm -f "$QUADLET_DIR/$unit"
  done
  run systemctl daemon-reload
  local secret
  for secret in "$ES_KEY_SECRET" "$LLM_KEY_SECRET"; do
    if $dry_run || have_secret "$secret"; then
      run podman secret rm "$secret"
    fi
  done
  say "the lme-enrich role and API key stay in Elasticsearch: docs/deploy.md says how to remove them"
  if $purge; then
    # Each may already be gone: absence is the goal, not an error.
    run podman volume rm --force lme-enrich-redis || true
    run podman volume rm --force lme-enrich-beat || true
    run podman network rm --force lme-enrich || true
    run podman rmi --force "$IMAGE" || true
    run rm -f "$SETTINGS_FILE"
  else
    say "kept Redis data, beat state, network lme-enrich, image and $SETTINGS_FILE (--purge removes them)"
  fi
}

if $uninstall; then
  do_uninstall
else
  do_install
fi
