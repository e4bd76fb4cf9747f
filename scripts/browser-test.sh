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
. scripts/lib.sh

want_executable "${CHROMIUM:-/usr/bin/chromium}" chromium
want_executable "${FIREFOX:-/usr/bin/firefox-esr}" firefox-esr
want_command ffmpeg ffmpeg
apt_install_wanted
require_node

build_wasm_unless_given

if [ -z "${SERVE_VIDEO_BIN:-}" ]; then
  SERVE_VIDEO_BIN=$(build_example canvid-tests serve_video)
  export SERVE_VIDEO_BIN
fi

step "npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

step "node --test (tests/browser)"
mkdir -p test-output/browser
(cd tests/browser && node --test --test-concurrency=1 test/)
echo "screenshots: test-output/browser/"
