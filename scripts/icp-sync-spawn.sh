#!/usr/bin/env bash
# icp.yaml's sync step of the spawn canister, run by `icp deploy` / `icp sync` once index and spawn
# are installed (icp-cli sets ICP_CLI_ENVIRONMENT, ICP_CLI_CID = spawn, ICP_CLI_CID_INDEX):
#   1. spawn's index := the index of this environment;
#   2. the index's registrars := [spawn] (only the spawn canister may register videos);
#   3. spawn's video module := target/canisters/video.wasm.gz (as scripts/build-wasm.sh gzipped
#      it, so the module hash it printed is every spawned video's), with its sha256, sent as a
#      candid file (far over the 128 KiB one command-line argument may hold; docs/deploy.md).
# Each call is idempotent: a second deploy sets the same values again.
set -euo pipefail
cd "$(dirname "$0")/.."
ICP=${ICP:-icp}
command -v "$ICP" >/dev/null || ICP=target/npm-tools/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp
env=(-e "${ICP_CLI_ENVIRONMENT:?run by icp deploy / icp sync}")
spawn=${ICP_CLI_CID:?}
index=${ICP_CLI_CID_INDEX:?no index canister in this environment}

"$ICP" canister call "${env[@]}" "$spawn" set_index "(opt principal \"$index\")"
"$ICP" canister call "${env[@]}" "$index" set_registrars "(vec { principal \"$spawn\" })"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - target/canisters/video.wasm.gz > "$tmp/set_wasm.did" <<'PY'
import hashlib, sys
w = open(sys.argv[1], "rb").read()
blob = "".join("\\%02x" % b for b in w)
digest = "".join("\\%02x" % b for b in hashlib.sha256(w).digest())
print('(record { wasm = blob "%s"; sha256 = blob "%s" })' % (blob, digest))
PY
"$ICP" canister call "${env[@]}" "$spawn" set_video_wasm --args-file "$tmp/set_wasm.did"
