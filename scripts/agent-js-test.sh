#!/usr/bin/env bash
# Node test of the embedded replica's IC HTTP interface with the unmodified @icp-sdk/core agent
# (local/http-interface/js-test, `node --test`): Ed25519, secp256k1, P-256 and delegation identities make
# update calls, queries and read_state requests with the agent's default verification.
#
#   ./scripts/agent-js-test.sh
#
# Builds the canister wasm (scripts/build-wasm.sh) unless CANVID_WASM_DIR is set, builds the
# `agent_test_server` example, installs the pinned npm packages (`npm ci`) and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

command -v node >/dev/null 2>&1 || { echo "error: node (>= 20) is required" >&2; exit 1; }

if [ -z "${CANVID_WASM_DIR:-}" ]; then
  step "canister wasm"
  ./scripts/build-wasm.sh >/dev/null
fi

if [ -z "${AGENT_TEST_SERVER:-}" ]; then
  step "cargo build --example agent_test_server"
  cargo build --quiet -p canvid-http-interface --example agent_test_server
  target_dir=$(cargo metadata --format-version 1 --no-deps | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  export AGENT_TEST_SERVER="$target_dir/debug/examples/agent_test_server"
fi

step "npm ci (local/http-interface/js-test)"
(cd local/http-interface/js-test && npm ci --no-audit --no-fund --loglevel=error)

step "node --test (local/http-interface/js-test)"
(cd local/http-interface/js-test && node --test --test-concurrency=1 test/)
