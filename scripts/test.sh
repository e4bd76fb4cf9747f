#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, the canister wasm build, and all tests
# (unit, candid-interface drift, embedded-replica conformance, integration, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

./scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --workspace

# The wasm is fresh from setup.sh; the scripts below need not rebuild it.
export CANVID_WASM_DIR="$PWD/target/canisters"

step "browser test (headless Chromium)"
./scripts/browser-test.sh

step "IC HTTP interface with the unmodified JS agent (@icp-sdk/core)"
./scripts/agent-js-test.sh

step "TypeScript SDK: unit, end-to-end against canvid serve, browser"
./scripts/sdk-test.sh
