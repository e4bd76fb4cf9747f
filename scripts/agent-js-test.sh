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
. scripts/lib.sh

require_node

build_wasm_unless_given

if [ -z "${AGENT_TEST_SERVER:-}" ]; then
  AGENT_TEST_SERVER=$(build_example canvid-http-interface agent_test_server)
  export AGENT_TEST_SERVER
fi

step "npm ci (local/http-interface/js-test)"
(cd local/http-interface/js-test && npm ci --no-audit --no-fund --loglevel=error)

step "node --test (local/http-interface/js-test)"
(cd local/http-interface/js-test && node --test --test-concurrency=1 test/)
