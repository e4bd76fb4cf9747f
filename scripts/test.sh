#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, the canister wasm build, and all tests
# (unit, candid-interface drift, embedded-replica conformance, integration, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# Each step prints the seconds elapsed since the start, so a slow CI run shows where its time went.
start=$SECONDS
step() { printf '\n==> [%ss] %s\n' "$((SECONDS - start))" "$*"; }

./scripts/setup.sh

# Every backend scenario runs on the embedded replica and, where setup.sh installed the server,
# on PocketIC too (tests/build.rs enables the variants when POCKET_IC_BIN names a file).
if [ -x target/pocket-ic/pocket-ic ]; then
  export POCKET_IC_BIN="$PWD/target/pocket-ic/pocket-ic"
  # The pocket-ic client starts a server per test process that outlives the test by its idle
  # timeout; with its output inherited, nextest reports every PocketIC test as leaky.
  export POCKET_IC_MUTE_SERVER=1
  step "PocketIC variants: ON ($POCKET_IC_BIN)"
else
  unset POCKET_IC_BIN
  step "PocketIC variants: OFF (no ../shared/pocket-ic): they are reported as ignored, not run"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# nextest runs test binaries in parallel (see .config/nextest.toml); it does not run doctests.
if cargo nextest --version >/dev/null 2>&1; then
  step "cargo nextest run (all Rust tests)"
  cargo nextest run --workspace
  step "cargo test --doc"
  cargo test --workspace --doc
else
  step "cargo test"
  cargo test --workspace
fi

# The wasm is fresh from setup.sh, and the Rust tests have built the binaries the scripts
# below run. Building them again with `-p <pkg>` would recompile dependencies with a different
# feature set (minutes on 2 cores), so build them once with the workspace's features and pass them on.
export CANVID_WASM_DIR="$PWD/target/canisters"
step "binaries for the Node and browser tests"
cargo build --quiet --workspace --examples --bins
target_dir=$(cargo_target_dir)
export SERVE_VIDEO_BIN="$target_dir/debug/examples/serve_video"
export AGENT_TEST_SERVER="$target_dir/debug/examples/agent_test_server"
export CANVID_BIN="$target_dir/debug/canvid"

step "browser test (headless Chromium and Firefox)"
./scripts/browser-test.sh

step "IC HTTP interface with the unmodified JS agent (@icp-sdk/core)"
./scripts/agent-js-test.sh

step "TypeScript SDK: unit, end-to-end against canvid serve, browser"
./scripts/sdk-test.sh

step "all checks passed"
