#!/usr/bin/env bash
# Builds the release wasm of every canister (and the replica's fixture canisters) into
# target/canisters/<name>.wasm, the one folder tests, benchmarks and the CLI read.
#
# Profile `canister` (see Cargo.toml): opt-level "s", LTO, one codegen unit. Then, with the
# pinned `ic-wasm` (scripts/npm-tools/, installed into target/npm-tools by this script), each
# canister module (video, spawn, index):
#   * is shrunk (unused functions and custom sections dropped);
#   * carries public metadata, as dfx and icp-cli builds do, so that any IC tool can read it with
#     read_state `/canister/<id>/metadata/<name>` (icp-cli / dfx decode answers with real field
#     names from it; without it they print hashed labels such as `100_394_802 = ...`):
#       - `candid:service`: the checked-in candid/<name>.did (the interface tests keep in step
#         with the code);
#       - `canvid:version`: `<crate version> <git commit>[-dirty]` (`unknown` outside a git
#         checkout), telling which source a deployed module came from.
# The fixture (replica-probe) is copied as cargo built it: the replica's own tests rely on its
# exact sections.
# The marketplace test fixture (tests/marketplace, canvid-test-marketplace; tests/tests/nft.rs)
# is only shrunk: it carries no metadata and no gzip.
#
# Each shrunk module is also written gzipped (`<name>.wasm.gz`, by the deploy recipe's gzip, so
# the gzip of video.wasm is exactly the module spawned video canisters run).
#
# Last, it prints each module's sha256: the module hash that `icp canister status` / `dfx canister
# info` show for a canister installed with that file, to check that a deployment runs the module
# you built. The IC hashes a module as it was sent: video canisters run video.wasm gzipped, as
# the spawn canister holds it, so theirs is the sha256 of that gzip, which spawn's
# `video_wasm_info` query reports (and `canvid:version` tells the commit either way).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' \
  || rustup target add wasm32-unknown-unknown
install_npm_tools

out=target/canisters
mkdir -p "$out"
packages=(canvid-video canvid-spawn canvid-index canvid-cycles-ledger canvid-cmc canvid-replica-probe canvid-test-marketplace)
args=()
for p in "${packages[@]}"; do args+=(-p "$p"); done
cargo build --quiet --target wasm32-unknown-unknown --profile canister "${args[@]}"

# The workspace version (every canister crate has `version.workspace = true`).
crate_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[ -n "$crate_version" ] || die "no [workspace.package] version in Cargo.toml"
if commit=$(git rev-parse HEAD 2>/dev/null); then
  # Uncommitted changes make the commit alone a lie about the source.
  git diff --quiet HEAD -- 2>/dev/null || commit="$commit-dirty"
else
  commit=unknown
fi

for p in "${packages[@]}"; do
  file="${p//-/_}.wasm"
  src="target/wasm32-unknown-unknown/canister/$file"
  name="${p#canvid-}"
  if [ "$name" = replica-probe ]; then
    cp "$src" "$out/$name.wasm"
    continue
  fi
  if [ "$name" = test-marketplace ]; then
    # A test fixture (tests/tests/nft.rs): shrunk, no metadata, no gzip.
    "$ICP_WASM_BIN" "$src" -o "$out/$name.wasm" shrink
    continue
  fi
  tmp="$out/$name.wasm.tmp"
  "$ICP_WASM_BIN" "$src" -o "$tmp" shrink
  "$ICP_WASM_BIN" "$tmp" -o "$tmp" metadata candid:service -f "candid/$name.did" -v public
  "$ICP_WASM_BIN" "$tmp" -o "$tmp" metadata canvid:version -d "$crate_version $commit" -v public
  mv "$tmp" "$out/$name.wasm"
done

# Each module gzipped too, by the deploy recipe's own gzip (devkit `gzip-wasm`: deterministic,
# flate2 best), so that video.wasm.gz is byte for byte what the spawn canister installs into
# every video canister: its sha256 below is the module hash `icp canister status` shows for a
# spawned video, and spawn's `video_wasm_info`. install_code takes a gzip as is (the IC
# decompresses it) and it is about a quarter of the upload.
cargo build --quiet -p canvid-devkit --bin gzip-wasm
for p in "${packages[@]}"; do
  name="${p#canvid-}"
  { [ "$name" = replica-probe ] || [ "$name" = test-marketplace ]; } && continue
  target/debug/gzip-wasm "$out/$name.wasm" "$out/$name.wasm.gz"
done

# DFINITY's asset canister (ic-certified-assets from crates.io), a benchmark fixture only
# (docs/performance.md, "canvid vs the DFINITY asset canister"; tests/tests/asset_canister.rs).
# A workspace of its own (ic-cdk 0.18 cannot share canvid's dependency graph), built as
# dfinity/sdk builds it (release, LTO, opt-level "z") and shrunk as dfx ships it. Cold build
# ≈ 100 s of CPU (its ~60 dependencies), a no-op afterwards.
# DFINITY's asset canister, the fixture of the "canvid vs the asset canister" benchmark and of
# tests/tests/asset_canister.rs: only with CANVID_ASSET=1. Its own dependency graph costs about a
# minute of a cold build, which CI's time budget does not have for a benchmark fixture.
if [ "${CANVID_ASSET:-}" = 1 ]; then
  cargo build --quiet --manifest-path bench/asset-canister/Cargo.toml --target-dir target \
    --target wasm32-unknown-unknown --release
  "$ICP_WASM_BIN" target/wasm32-unknown-unknown/release/canvid_asset_canister.wasm \
    -o "$out/asset.wasm" shrink
else
  step "asset canister (benchmark fixture): not built; CANVID_ASSET=1 builds it"
fi

step "module hashes (sha256; compare with \`icp canister status\` / \`dfx canister info\`; video canisters made by spawn run video.wasm.gz)"
for p in "${packages[@]}" canvid-asset; do
  name="${p#canvid-}"
  for f in "$out/$name.wasm" "$out/$name.wasm.gz"; do
    [ -f "$f" ] || continue
    printf '%s  %s  (%s bytes)\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$f" "$(stat -c %s "$f")"
  done
done
