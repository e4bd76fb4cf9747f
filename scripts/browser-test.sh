#!/usr/bin/env bash
# Browser test: plays and seeks a video served by a video canister (embedded replica +
# canvid-gateway) in real Chromium (playwright-core) and Firefox ESR (puppeteer-core over
# WebDriver BiDi) (tests/browser, `node --test`).
#
#   ./scripts/browser-test.sh
#
# Installs what it needs when missing: Debian's chromium, firefox-esr and ffmpeg (apt-get; as root or via
# sudo; SKIP_APT=1 to skip), the pinned npm packages (`npm ci`). Builds the canister wasm
# (scripts/build-wasm.sh) unless CANVID_WASM_DIR is set, and the `serve_video` example.
# Screenshots and the gateway's request log end up in test-output/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

apt_packages=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || apt_packages+=(chromium)
[ -x "${FIREFOX:-/usr/bin/firefox-esr}" ] || apt_packages+=(firefox-esr)
command -v ffmpeg >/dev/null 2>&1 || apt_packages+=(ffmpeg)
if [ ${#apt_packages[@]} -gt 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  step "apt-get install ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
command -v node >/dev/null 2>&1 || { echo "error: node (>= 18) is required" >&2; exit 1; }

if [ -z "${CANVID_WASM_DIR:-}" ]; then
  step "canister wasm"
  ./scripts/build-wasm.sh >/dev/null
fi

if [ -z "${SERVE_VIDEO_BIN:-}" ]; then
  step "cargo build --example serve_video"
  cargo build --quiet -p canvid-tests --example serve_video
  target_dir=$(cargo metadata --format-version 1 --no-deps | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  export SERVE_VIDEO_BIN="$target_dir/debug/examples/serve_video"
fi

step "npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

step "node --test (tests/browser)"
mkdir -p test-output/browser
(cd tests/browser && node --test --test-concurrency=1 test/)
echo "screenshots: test-output/browser/"
