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

step "browser test (headless Chromium)"
./scripts/browser-test.sh
