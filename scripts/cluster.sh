#!/usr/bin/env bash
# Builds Raft3D (release, with its dashboard) and starts a local 3-node cluster: nodes
# and dashboards on http://127.0.0.1:8081-8083, data under ./data. Ctrl-C stops all
# nodes. Extra arguments go to `raft3d cluster` (see `raft3d cluster --help`).
# The first run installs the pinned dashboard tools (wasm-bindgen-cli, ~2 min to compile).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-dashboard.sh
# After the dashboard: the binary embeds the bundle it finds (server/build.rs).
cargo build --release --locked --bin raft3d
exec ./target/release/raft3d cluster "$@"
