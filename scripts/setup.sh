#!/usr/bin/env bash
# Installs what canvid needs on a fresh machine that has only the Rust toolchain, then builds
# the canister wasm. Safe to run again: every step checks before it installs.
#
#   ./scripts/setup.sh            # everything
#   SKIP_APT=1 ./scripts/setup.sh # no Debian packages (you installed ffmpeg yourself)
#
# PocketIC: where the project's shared folder is next to the checkout (`../shared/pocket-ic/`,
# on the team's machines and in CI), the PocketIC 10.0.0 server in it is unpacked to
# target/pocket-ic/pocket-ic (checksum verified) with the Debian libraries it links, and
# scripts/test.sh runs every backend scenario on it too. Elsewhere (a user's clone) this step
# says so and the PocketIC variants are reported as ignored, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  step "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

pocket_ic_gz=../shared/pocket-ic/pocket-ic-server-10.0.0-x86_64-linux.gz
# sha256 of the decompressed server, as ../shared/pocket-ic/README.md states it.
pocket_ic_sha256=4b4906de9341fa6c7d3dbccd6a8cfd0edeb27f369fefabd1e0c9189ccbcee639
pocket_ic_bin=target/pocket-ic/pocket-ic

want_command ffmpeg ffmpeg
# The docs' icp commands read .canvid/serve.json with jq and write argument files with python3;
# cli/tests/docs_run.rs runs them as written (docs/testing.md, "Docs that run").
want_command jq jq
want_command python3 python3
if [ -f "$pocket_ic_gz" ]; then
  # The server's shared libraries (Debian).
  for lib in liblmdb0 libunwind8 liblzma5; do
    want_deb "$lib"
  done
fi
apt_install_wanted

if [ -f "$pocket_ic_gz" ]; then
  if ! echo "$pocket_ic_sha256  $pocket_ic_bin" | sha256sum --check --status 2>/dev/null; then
    step "unpacking the PocketIC 10.0.0 server into $pocket_ic_bin"
    mkdir -p "$(dirname "$pocket_ic_bin")"
    gunzip -c "$pocket_ic_gz" > "$pocket_ic_bin.tmp"
    echo "$pocket_ic_sha256  $pocket_ic_bin.tmp" | sha256sum --check --quiet
    chmod +x "$pocket_ic_bin.tmp"
    mv "$pocket_ic_bin.tmp" "$pocket_ic_bin"
  fi
  step "PocketIC: $("$pocket_ic_bin" --version) at $pocket_ic_bin"
else
  step "PocketIC: $pocket_ic_gz not found; the PocketIC test variants will be skipped (reported as ignored)"
fi

# ic-wasm (scripts/build-wasm.sh shrinks the modules and adds their metadata with it) and the
# real icp-cli (cli/tests/icp_cli.rs runs it against `canvid serve`): pinned npm packages,
# installed repo-locally into target/npm-tools (scripts/npm-tools/README.md).
require_node
install_npm_tools
step "ic-wasm $("$ICP_WASM_BIN" --version | cut -d' ' -f2), icp $("$ICP_CLI_BIN" --version | cut -d' ' -f2) in $NPM_TOOLS_DIR"

step "building canister wasm into target/canisters/"
./scripts/build-wasm.sh
