#!/usr/bin/env bash
# icp.yaml's build step: `scripts/icp-build.sh <index|spawn>` builds every canister module with
# scripts/build-wasm.sh (candid:service and canvid:version metadata, like dfx's build) and hands
# icp-cli the one it asked for ($ICP_WASM_OUTPUT_PATH). icp-cli builds index and spawn at the
# same time: the lock makes the second build wait for the first (then a no-op for cargo).
# CANVID_PREBUILT_WASM=1 skips the build and takes target/canisters/ as it is (cli/tests uses
# it: rebuilding inside `cargo test` would rewrite modules other tests are reading).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/icp-build.sh <index|spawn>}
: "${ICP_WASM_OUTPUT_PATH:?run by icp build / icp deploy}"
if [ -z "${CANVID_PREBUILT_WASM:-}" ]; then
  mkdir -p target
  flock target/.build-wasm.lock scripts/build-wasm.sh >&2
fi
cp "target/canisters/$name.wasm" "$ICP_WASM_OUTPUT_PATH"
