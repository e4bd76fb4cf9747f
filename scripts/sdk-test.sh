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
#    transfer, approve, abort + resume, wrong owner.
# 4. Browser test: the example page (esbuild bundle) in headless Debian Chromium through
#    playwright-core: choose a file, upload, list, play back from the gateway.
#
# Installs what it needs when missing: chromium and ffmpeg (apt-get; SKIP_APT=1 to skip).
# Builds the canister wasm (scripts/build-wasm.sh) unless CANVID_WASM_DIR is set, and the
# `canvid` binary (debug) unless CANVID_BIN is set. Screenshots: test-output/sdk-browser/.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
what="${1:-all}"

command -v node >/dev/null 2>&1 || { echo "error: node (>= 20) is required" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "error: node >= 20 required, found $(node --version)" >&2; exit 1; }

step "npm ci (sdk-ts)"
(cd sdk-ts && npm ci --no-audit --no-fund --loglevel=error)

step "tsc build (sdk-ts)"
(cd sdk-ts && npx tsc -p tsconfig.json)

step "API reference is current (docs/sdk-api.md)"
(cd sdk-ts && node scripts/api-docs.mjs --check)

step "unit tests (sdk-ts)"
(cd sdk-ts && node --test --test-concurrency=1 dist/test/unit/)

[ "$what" = unit ] && exit 0

apt_packages=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || apt_packages+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || apt_packages+=(ffmpeg)
if [ ${#apt_packages[@]} -gt 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  step "apt-get install ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

if [ -z "${CANVID_WASM_DIR:-}" ]; then
  step "canister wasm"
  ./scripts/build-wasm.sh >/dev/null
fi

if [ -z "${CANVID_BIN:-}" ]; then
  # The debug build: `cargo test --workspace` has already built it (the interpreter and the
  # replica are optimised even in dev, see Cargo.toml), so CI does not compile everything twice.
  step "cargo build -p canvid-cli"
  cargo build --quiet -p canvid-cli
  target_dir=$(cargo metadata --format-version 1 --no-deps | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  export CANVID_BIN="$target_dir/debug/canvid"
fi

step "end-to-end tests against canvid serve (sdk-ts)"
(cd sdk-ts && node --test --test-concurrency=1 dist/test/e2e/)

step "example bundle (esbuild) + type check"
(cd sdk-ts && npx tsc -p examples/tsconfig.json && node examples/build.mjs)

step "browser test: example page in headless Chromium (sdk-ts)"
mkdir -p test-output/sdk-browser
(cd sdk-ts && node --test --test-concurrency=1 dist/test/browser/)
echo "screenshots: test-output/sdk-browser/"
