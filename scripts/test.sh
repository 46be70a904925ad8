#!/usr/bin/env bash
# Runs every check and test of the project. This is the README's test command, and
# .ci/run calls exactly this. Installs what it needs if missing (rustfmt, clippy, the
# wasm32 target, pinned wasm-bindgen-cli / npm packages, Debian's Chromium, the
# pinned Schemathesis in a venv), so
# it passes on a fresh machine with rustup, node/npm and apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says how long the one before it took, and the run so far (CI keeps the log of
# a failed run only: that is where the time of every step is read).
last_step=$SECONDS
step() {
  printf '\n(%d s; %d s so far)\n== %s\n' "$((SECONDS - last_step))" "$SECONDS" "$*"
  last_step=$SECONDS
}

step "toolchain"
rustup component add rustfmt clippy
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo --version

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "the dashboard's browser build lints clean (wasm32, hydrate)"
cargo clippy --locked -p frontend --features hydrate --target wasm32-unknown-unknown -- -D warnings

step "docs: every intra-doc link resolves (private items included: this is an application)"
RUSTDOCFLAGS="-D warnings -A rustdoc::private_intra_doc_links" \
    cargo doc --no-deps --document-private-items --workspace --locked

step "build"
cargo build --workspace --all-targets --locked

step "openraft's own unit tests on our patched copy (engine, replication, ...; vendor/README.md)"
(cd vendor/openraft-0.9.25 && CARGO_TARGET_DIR=../../target/vendor-openraft cargo test --locked --lib)

step "a real OctoPrint 1.11.8 with its virtual printer, for the printer drivers (venv in target/)"
./scripts/octoprint.sh install

step "unit, storage-suite, in-process API, durability (power cut, disk fault on simulated disks), OctoPrint and Moonraker adapter tests"
cargo test --workspace --locked --lib --test api --test durability --test octoprint --test moonraker

step "multi-process cluster tests (real release raft3d processes, SIGKILL; printing through real OctoPrints)"
# Against the release binary we ship: some failures (a wiped follower rejoining) only
# show with its timing. Two clusters at a time at most on a 2-core machine.
cargo test --release --locked -p raft3d --test processes -- --test-threads=2

step "dashboard: bundle (cargo for wasm32, wasm-bindgen, wasm-opt) and end-to-end tests (Playwright, Chromium, 3 raft3d processes)"
./scripts/build-dashboard.sh
cargo build --release --locked --bin raft3d
./scripts/e2e.sh

step "API fuzzing: every operation of /api/v1/openapi.json against a secured 3-node cluster (Schemathesis)"
./scripts/fuzz-api.sh

step "benchmark smoke run: a few seconds of every part at both settings, Raft3D only (so it cannot rot)"
# raft3d-bench starts the raft3d binary next to it (target/release/raft3d, built above).
cargo build --release --locked -p raft3d-bench
./target/release/raft3d-bench --without-etcd --clients 1,16 --duration-secs 2 --warmup-secs 1 \
    --open-rate 200 --kills 2 --records 2000 --restarts 1 --out-dir target/bench-smoke

step "history benchmark smoke run: a small farm, every measurement once (so it cannot rot)"
./target/release/raft3d-history-bench --jobs 3000 --pages 200 --event-rate 200 --event-secs 2 \
    --out target/bench-smoke/history.json

step "printing benchmark smoke run: 2 real OctoPrints driven by 3 raft3d nodes (so it cannot rot)"
./target/release/raft3d-printing-bench --smoke --out target/bench-smoke/printing.json

step "fault injection: 60 s, fixed seed (kills, pauses, partitions, wipes; see README)"
cargo test --release --locked -p raft3d --test chaos -- --seed 1 --duration 60s
step "done"
