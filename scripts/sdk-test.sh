#!/usr/bin/env bash
# TypeScript SDK (sdk-ts/, @canvid/sdk): install, build, and test it.
#
#   ./scripts/sdk-test.sh              # everything: unit, end-to-end, browser
#   ./scripts/sdk-test.sh unit         # only npm ci + build + unit tests (no Rust, no browser)
#
# 1. npm ci (pinned, package-lock.json) and `tsc` build; bindings drift check is a unit test.
# 2. Unit tests (node --test on the compiled output): chunking, hashing, retry/backoff,
#    concurrency, resume, progress, download verification, error mapping, URLs, pagination.
# 3. End-to-end tests in Node against `canvid serve` (real canister wasm in the embedded
#    replica, IC HTTP interface): upload a real MP4 made by ffmpeg, download byte-exact, list,
#    transfer, approve, abort + resume, wrong owner; named files (an HLS folder uploaded, read
#    back, free paths; 520 files aborted and resumed).
# 4. Browser test: the example page (esbuild bundle) in headless Debian Chromium through
#    playwright-core: choose a file, upload, list, play back from the gateway; an HLS ladder
#    (`canvid hls prepare`) played with hls.js (rendition switch, seek, subtitles, a folder
#    upload, a private video with a token), the gateway log showing no upgraded request. With
#    PocketIC (POCKET_IC_BIN, else target/pocket-ic/pocket-ic when scripts/setup.sh unpacked it)
#    the ladder plays again on a PocketIC instance through its own HTTP gateway: the video
#    canister installed by the test, `uploadFiles` into it, no upgrade (the canister's cycles),
#    IC-Certificate on every answer. Without PocketIC that test is reported skipped, with why.
#
# Installs what it needs when missing: chromium and ffmpeg (apt-get; SKIP_APT=1 to skip).
# Builds the canister wasm (scripts/build-wasm.sh) unless CANVID_WASM_DIR is set, and the
# `canvid` binary (debug) unless CANVID_BIN is set. Screenshots: test-output/sdk-browser/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
what="${1:-all}"

require_node

step "npm ci (sdk-ts)"
(cd sdk-ts && npm ci --no-audit --no-fund --loglevel=error)

step "tsc build (sdk-ts)"
(cd sdk-ts && npx tsc -p tsconfig.json)

step "API reference is current (docs/sdk-api.md)"
(cd sdk-ts && node scripts/api-docs.mjs --check)

step "unit tests (sdk-ts)"
(cd sdk-ts && node --test --test-concurrency=1 dist/test/unit/)

[ "$what" = unit ] && exit 0

want_executable "${CHROMIUM:-/usr/bin/chromium}" chromium
want_command ffmpeg ffmpeg
apt_install_wanted

build_wasm_unless_given

if [ -z "${CANVID_BIN:-}" ]; then
  # The debug build: `cargo test --workspace` has already built it (the interpreter and the
  # replica are optimised even in dev, see Cargo.toml), so CI does not compile everything twice.
  CANVID_BIN=$(build_bin canvid-cli canvid)
  export CANVID_BIN
fi

step "end-to-end tests against canvid serve (sdk-ts)"
(cd sdk-ts && node --test --test-concurrency=1 dist/test/e2e/)

step "example bundle (esbuild) + type check"
(cd sdk-ts && npx tsc -p examples/tsconfig.json && node examples/build.mjs)

if [ -z "${POCKET_IC_BIN:-}" ] && [ -x target/pocket-ic/pocket-ic ]; then
  export POCKET_IC_BIN="$PWD/target/pocket-ic/pocket-ic"
fi
if [ -n "${POCKET_IC_BIN:-}" ]; then
  step "browser test: example page in headless Chromium (sdk-ts); HLS on PocketIC too ($POCKET_IC_BIN)"
else
  step "browser test: example page in headless Chromium (sdk-ts); HLS on PocketIC: OFF (no POCKET_IC_BIN), reported skipped"
fi
mkdir -p test-output/sdk-browser
(cd sdk-ts && node --test --test-concurrency=1 dist/test/browser/)
echo "screenshots: test-output/sdk-browser/"
