#!/usr/bin/env bash
# Builds the dashboard bundle into target/site/pkg (served by every node under /pkg).
# Installs what is missing, pinned: the wasm32 target, Trunk, wasm-bindgen-cli, and the
# npm wasm-opt (binaryen@132 in end2end/). Repeat runs skip what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130 # must equal the wasm-bindgen crate pinned in Cargo.toml

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 ||
  rustup target add wasm32-unknown-unknown
if ! trunk --version 2>/dev/null | grep -qF " $TRUNK_VERSION"; then
  echo "installing trunk $TRUNK_VERSION (about 13 minutes on 2 cores)"
  cargo install --locked trunk --version "$TRUNK_VERSION"
fi
if ! wasm-bindgen --version 2>/dev/null | grep -qF " $WASM_BINDGEN_VERSION"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lock file names a webpki-roots version the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if [ ! -x end2end/node_modules/.bin/wasm-opt ]; then
  (cd end2end && npm ci --no-audit --no-fund)
fi

# Debian's binaryen (wasm-opt 108) silently produces a broken bundle: never let Trunk
# find it. The npm one goes first on PATH.
if [ "$(command -v wasm-opt)" != "" ] && [ "$(command -v wasm-opt)" != "$PWD/end2end/node_modules/.bin/wasm-opt" ]; then
  echo "note: ignoring $(command -v wasm-opt); using end2end/node_modules/.bin/wasm-opt"
fi
cargo fetch --locked
PATH="$PWD/end2end/node_modules/.bin:$PATH" trunk build --release --offline
# Precompressed copies, served to browsers that accept gzip (tower-http ServeDir).
find target/site/pkg -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) \
  -exec gzip -9 --keep --force {} +
ls -l target/site/pkg/frontend_bg.wasm target/site/pkg/frontend_bg.wasm.gz
