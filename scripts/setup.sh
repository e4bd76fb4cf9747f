#!/usr/bin/env bash
# Installs what canvid needs on a fresh machine that has only the Rust toolchain, then builds
# the canister wasm. Safe to run again: every step checks before it installs.
#
#   ./scripts/setup.sh            # everything
#   SKIP_APT=1 ./scripts/setup.sh # no Debian packages (you installed ffmpeg yourself)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '==> %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  step "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

apt_packages=()
command -v ffmpeg >/dev/null 2>&1 || apt_packages+=(ffmpeg)
if [ ${#apt_packages[@]} -gt 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  step "apt-get install ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

step "building canister wasm into target/canisters/"
./scripts/build-wasm.sh
