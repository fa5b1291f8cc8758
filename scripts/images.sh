#!/usr/bin/env bash
# Build the images with podman: `make image`.
#   localhost/otaku:dev        the `serve` target (API and UI)
#   localhost/otaku-jobs:dev   the `jobs` target (init, scheduler, retrain, Dask workers)
#   localhost/otaku-mlflow:dev deploy/mlflow
#   localhost/otaku-postgres:dev, localhost/otaku-prometheus:dev  deploy/podman (the stack)
# BASE_IMAGE: the Python 3.11 base (default python:3.11-slim-bookworm when a registry answers,
# else localhost/debian-py311, made here with debootstrap from the apt mirror). Layers are
# cached by podman: a change to the code rebuilds only the last layers, a change to
# pyproject.toml the dependencies. IMAGES="serve jobs ..." picks a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}"
PODMAN=(podman --runtime "${OTAKU_OCI_RUNTIME:-runc}")
IMAGES="${IMAGES:-serve jobs mlflow postgres prometheus}"
LOCAL_BASE=localhost/debian-py311
MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

log() { printf '[images] %s\n' "$*" >&2; }

base_image() {
    if [ -n "${BASE_IMAGE:-}" ]; then echo "$BASE_IMAGE"; return; fi
    if "${PODMAN[@]}" image exists python:3.11-slim-bookworm 2>/dev/null \
        || "${PODMAN[@]}" pull -q docker.io/library/python:3.11-slim-bookworm >/dev/null 2>&1; then
        echo python:3.11-slim-bookworm
        return
    fi
    if ! "${PODMAN[@]}" image exists "$LOCAL_BASE"; then
        log "no registry: making $LOCAL_BASE with debootstrap from $MIRROR (about a minute)"
        rootfs="$(mktemp -d /var/tmp/otaku-rootfs.XXXXXX)"
        trap 'rm -rf "$rootfs"' RETURN
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$rootfs" "$MIRROR" >/dev/null
        tar -C "$rootfs" -c . | "${PODMAN[@]}" import -q - "$LOCAL_BASE" >/dev/null
    fi
    echo "$LOCAL_BASE"
}

# pip inside the build reaches the registries as the host does: its CA bundle (TLS
# interception), its index and its local wheels, mounted read-only.
pip_args=()
cert="${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}"
if [ -n "$cert" ] && [ -f "$cert" ]; then
    pip_args+=(-v "$cert:$cert:ro" --build-arg "PIP_CERT=$cert")
fi
if [ -n "${PIP_FIND_LINKS:-}" ] && [ -d "$PIP_FIND_LINKS" ]; then
    pip_args+=(-v "$PIP_FIND_LINKS:$PIP_FIND_LINKS:ro" --build-arg "PIP_FIND_LINKS=$PIP_FIND_LINKS")
fi
[ -n "${PIP_INDEX_URL:-}" ] && pip_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
# PyTorch's CPU index unreachable (no DNS answer): torch from pip's own sources instead.
torch_args=()
if ! python3 -c "import socket; socket.getaddrinfo('download.pytorch.org', 443)" 2>/dev/null; then
    torch_args+=(--build-arg "TORCH_INDEX_URL=")
fi

BASE="$(base_image)"
build() {  # name, then podman build arguments
    local name="$1"; shift
    local started=$SECONDS
    log "building $name (base $BASE)"
    "${PODMAN[@]}" build --format docker --network host --layers --build-arg "BASE_IMAGE=$BASE" \
        "${pip_args[@]}" "$@" >&2
    log "$name built in $((SECONDS - started)) s"
}
for image in $IMAGES; do
    case "$image" in
        serve) build serve --target serve -t localhost/otaku:dev . ;;
        jobs) build jobs "${torch_args[@]}" --target jobs -t localhost/otaku-jobs:dev . ;;
        mlflow) build mlflow -t localhost/otaku-mlflow:dev deploy/mlflow ;;
        postgres) build postgres -t localhost/otaku-postgres:dev deploy/podman/postgres ;;
        prometheus) build prometheus -t localhost/otaku-prometheus:dev deploy/podman/prometheus ;;
        *) log "unknown image $image (serve, jobs, mlflow, postgres, prometheus)"; exit 2 ;;
    esac
done
"${PODMAN[@]}" images --filter reference='localhost/otaku*' >&2
