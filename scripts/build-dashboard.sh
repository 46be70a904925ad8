#!/usr/bin/env bash
# Builds the dashboard bundle into target/site/pkg. The next cargo build of the node
# embeds it (server/build.rs) and every node serves it under /pkg; to try a new bundle
# without rebuilding the node, start it with --site-dir target/site.
# Installs what is missing, pinned: the wasm32 target, wasm-bindgen-cli, and the npm
# wasm-opt (binaryen@132 in end2end/). Repeat runs skip what is already there. Prints
# how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130 # must equal the wasm-bindgen crate pinned in Cargo.lock
started=$SECONDS
took() { echo "build-dashboard: $1 in $((SECONDS - started)) s"; started=$SECONDS; }

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 ||
  rustup target add wasm32-unknown-unknown
if ! wasm-bindgen --version 2>/dev/null | grep -qF " $WASM_BINDGEN_VERSION"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about a minute on 2 cores)"
  # Not --locked: its lock file names a webpki-roots version the registry mirror lacks.
  # --debug: compiles in 61 s instead of 126 (2 cores); the unoptimised tool takes 2.2 s
  # instead of 0.4 on our bundle and writes the same bytes (compared, 2026-12-07).
  cargo install --debug wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  took "wasm-bindgen-cli installed"
fi
if [ ! -x end2end/node_modules/.bin/wasm-opt ]; then
  (cd end2end && npm ci --no-audit --no-fund)
  took "npm packages (wasm-opt) installed"
fi
# Debian's binaryen (wasm-opt 108) silently produces a broken bundle: only the npm one
# (binaryen@132, pinned in end2end/package-lock.json) is used.
wasm_opt=end2end/node_modules/.bin/wasm-opt

# What Trunk did for this project, in three commands (Trunk itself took 6 of the first
# start's 16.7 minutes to compile): the hydrate crate for wasm32 with the small-code
# profile, its JS bindings (ES module, as `--target web`), and `wasm-opt -Oz`. The
# files keep the names the pages load: /pkg/frontend.js, /pkg/frontend_bg.wasm,
# /pkg/style/*.css.
# Into a staging directory, and only what changed is copied over: a rewritten file would
# make cargo rebuild and relink the node that embeds it.
pkg=target/site/pkg
stage=target/site/pkg.staging
rm -rf "$stage"
mkdir -p "$stage"
cargo build --locked --target wasm32-unknown-unknown --profile wasm-release \
  -p frontend --no-default-features --features hydrate
took "dashboard crate built for wasm32"
wasm-bindgen --target web --no-typescript --out-dir "$stage" --out-name frontend \
  target/wasm32-unknown-unknown/wasm-release/frontend.wasm
"$wasm_opt" -Oz --output "$stage/frontend_bg.wasm.opt" "$stage/frontend_bg.wasm"
mv "$stage/frontend_bg.wasm.opt" "$stage/frontend_bg.wasm"
cp -r style "$stage/style"
took "bindings and wasm-opt"
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
