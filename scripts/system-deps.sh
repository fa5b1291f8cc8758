#!/usr/bin/env bash
# Programs some tests use, from the system's packages (Debian/Ubuntu): Chromium for the UI tests,
# Prometheus and promtool for the monitoring tests, docker-compose to check the Compose file,
# podman with runc (and debootstrap for a local base image) to build and run the images.
# Run by `make test`. Without root (or password-less sudo) it says what to install and goes
# on: those tests then skip (CI sets OTAKU_REQUIRE_TOOLS=1, which makes them fail instead).
set -euo pipefail

missing=()
command -v "${OTAKU_CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || { command -v docker >/dev/null && docker compose version >/dev/null 2>&1; } || missing+=(docker-compose)
command -v podman >/dev/null && command -v runc >/dev/null || missing+=(podman runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "note: install ${missing[*]} with your package manager to run every test" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "note: run 'sudo apt-get install ${missing[*]}' to run every test" >&2
    exit 0
fi
echo "installing ${missing[*]} (system packages for the browser, monitoring and compose tests)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null \
    || { "${sudo[@]}" apt-get update -q >/dev/null \
         && "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; }
