# shellcheck shell=bash
# Helpers shared by the scripts in scripts/. Source it from the repository root:
#
#   cd "$(dirname "$0")/.."
#   . scripts/lib.sh

# The Node.js major version the SDK (sdk-ts/) and the JS tools and tests need.
NODE_MIN_MAJOR=20

step() { printf '\n==> %s\n' "$*"; }

die() {
  echo "error: $*" >&2
  exit 1
}

# --- Debian packages: collect what is missing, then install it in one apt-get run -----------

apt_wanted=()
# want_command CMD PKG: PKG is needed when CMD is not on the PATH.
want_command() { command -v "$1" >/dev/null 2>&1 || apt_wanted+=("$2"); }
# want_executable FILE PKG: PKG is needed when FILE is not an executable.
want_executable() { [ -x "$1" ] || apt_wanted+=("$2"); }
# want_deb PKG: PKG is needed when it is not installed.
want_deb() { dpkg -s "$1" >/dev/null 2>&1 || apt_wanted+=("$1"); }

# apt_install_wanted: installs the packages the want_* calls found missing (as root or through
# sudo), unless there are none or SKIP_APT=1.
apt_install_wanted() {
  if [ ${#apt_wanted[@]} -gt 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    step "apt-get install ${apt_wanted[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_wanted[@]}" >/dev/null
  fi
  apt_wanted=()
}

# --- Node.js ----------------------------------------------------------------------------------

# require_node: fails unless node >= NODE_MIN_MAJOR is on the PATH.
require_node() {
  command -v node >/dev/null 2>&1 || die "node (>= $NODE_MIN_MAJOR) is required"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge "$NODE_MIN_MAJOR" ] || die "node >= $NODE_MIN_MAJOR is required, found $(node --version)"
}

# --- Rust builds ------------------------------------------------------------------------------

# build_wasm_unless_given: builds the canister wasm (scripts/build-wasm.sh) unless
# CANVID_WASM_DIR names a folder of prebuilt modules.
build_wasm_unless_given() {
  if [ -z "${CANVID_WASM_DIR:-}" ]; then
    step "canister wasm"
    ./scripts/build-wasm.sh >/dev/null
  fi
}

# cargo_target_dir: the workspace's target directory (CARGO_TARGET_DIR, .cargo/config, ...), as
# cargo metadata reports it. Needs node.
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))'
}

# build_example PACKAGE EXAMPLE: builds the example (debug) and prints its binary's path. Use it
# as `VAR=$(build_example ...)` on a line of its own, so that a failed build stops the script.
build_example() {
  step "cargo build -p $1 --example $2" >&2
  cargo build --quiet -p "$1" --example "$2"
  echo "$(cargo_target_dir)/debug/examples/$2"
}

# build_bin PACKAGE BIN: builds the package's binary (debug) and prints its path (as
# build_example).
build_bin() {
  step "cargo build -p $1" >&2
  cargo build --quiet -p "$1"
  echo "$(cargo_target_dir)/debug/$2"
}

# --- Prebuilt IC tools from npm (scripts/npm-tools/) -------------------------------------------

NPM_TOOLS_DIR=target/npm-tools
ICP_WASM_BIN=$NPM_TOOLS_DIR/node_modules/@icp-sdk/ic-wasm-linux-x64/bin/ic-wasm
ICP_CLI_BIN=$NPM_TOOLS_DIR/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp

# install_npm_tools: installs the pinned ic-wasm and icp binaries (scripts/npm-tools/) into
# target/npm-tools with `npm ci` (integrity-checked), unless the installed lock file is already
# the checked-in one.
install_npm_tools() {
  if cmp -s scripts/npm-tools/package-lock.json "$NPM_TOOLS_DIR/package-lock.json" \
    && [ -x "$ICP_WASM_BIN" ] && [ -x "$ICP_CLI_BIN" ]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm is required to install ic-wasm and icp (scripts/npm-tools/)"
  step "npm ci: ic-wasm and icp into $NPM_TOOLS_DIR (scripts/npm-tools/)" >&2
  mkdir -p "$NPM_TOOLS_DIR"
  cp scripts/npm-tools/package.json scripts/npm-tools/package-lock.json "$NPM_TOOLS_DIR/"
  (cd "$NPM_TOOLS_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  [ -x "$ICP_WASM_BIN" ] && [ -x "$ICP_CLI_BIN" ] || die "npm ci did not install $ICP_WASM_BIN and $ICP_CLI_BIN"
}
