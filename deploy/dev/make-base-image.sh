#!/usr/bin/env bash
# Make a local stand-in for the Containerfile's base image on a machine that cannot pull images
# (our development machines reach Debian's package mirror but no container registry).
# Debian bookworm + python3.11 from Debian, imported and tagged with the exact FROM name so that
# `podman build` finds it locally. Users with a registry never need this.
#
#   deploy/dev/make-base-image.sh [WORK_DIR]      (root; needs debootstrap and podman)
set -euo pipefail

base="${LME_ENRICH_BASE_IMAGE:-docker.io/library/python:3.11-slim-bookworm}"
work="${1:-/var/tmp/lme-enrich-base}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if podman image exists "$base"; then
  echo "base image $base already present"
  exit 0
fi
mkdir -p "$work"
if [[ ! -x "$work/rootfs/usr/bin/python3.11" ]]; then
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs" "$mirror"
fi
# The official image has python/python3 on PATH under /usr/local/bin; Debian's are in /usr/bin, which is on PATH too.
ln -sf /usr/bin/python3 "$work/rootfs/usr/local/bin/python"
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -c . | podman import --change 'CMD ["python3"]' - "$base"
echo "imported $base"
