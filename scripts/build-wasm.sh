#!/usr/bin/env bash
# Builds the release wasm of every canister (and the replica's fixture canisters) into
# target/canisters/<name>.wasm, the one folder tests, benchmarks and the CLI read.
#
# Profile `canister` (see Cargo.toml): opt-level "s", LTO, one codegen unit. If `ic-wasm` is on
# PATH the modules are also shrunk; nothing requires it.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' \
  || rustup target add wasm32-unknown-unknown

out=target/canisters
mkdir -p "$out"
packages=(canvid-video canvid-spawn canvid-index canvid-replica-probe)
args=()
for p in "${packages[@]}"; do args+=(-p "$p"); done
cargo build --quiet --target wasm32-unknown-unknown --profile canister "${args[@]}"

for p in "${packages[@]}"; do
  file="${p//-/_}.wasm"
  src="target/wasm32-unknown-unknown/canister/$file"
  name="${p#canvid-}"
  cp "$src" "$out/$name.wasm"
  if command -v ic-wasm >/dev/null 2>&1; then
    ic-wasm "$out/$name.wasm" -o "$out/$name.wasm" shrink
  fi
done
ls -l "$out"
