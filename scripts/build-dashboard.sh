#!/usr/bin/env bash
# Builds the dashboard bundle into target/site/pkg. The next cargo build of the node
# embeds it (server/build.rs) and every node serves it under /pkg; to try a new bundle
# without rebuilding the node, start it with --site-dir target/site.
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
# Trunk rewrites every file on each build, and a rewritten file makes cargo rebuild and
# relink the node that embeds it (minutes, with LTO). So build into a staging directory and
# copy over only what changed: an unchanged bundle leaves the next cargo build nothing to do.
pkg=target/site/pkg
stage=target/site/pkg.staging
rm -rf "$stage"
PATH="$PWD/end2end/node_modules/.bin:$PATH" trunk build --release --offline --dist "$stage"
# Precompressed copies, embedded too, served to browsers that accept gzip. -n: no name or
# time in the header, so the same file compresses to the same bytes.
find "$stage" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) \
  -exec gzip -9 -n --keep --force {} +
mkdir -p "$pkg"
(cd "$stage" && find . -type f -print0) | while IFS= read -r -d '' file; do
  if ! cmp -s "$stage/$file" "$pkg/$file"; then
    mkdir -p "$(dirname "$pkg/$file")"
    cp "$stage/$file" "$pkg/$file"
  fi
done
(cd "$pkg" && find . -type f -print0) | while IFS= read -r -d '' file; do
  [ -e "$stage/$file" ] || rm "$pkg/$file"
done
find "$pkg" -mindepth 1 -type d -empty -delete
rm -rf "$stage"
ls -l "$pkg/frontend_bg.wasm" "$pkg/frontend_bg.wasm.gz"
