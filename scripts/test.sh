#!/usr/bin/env bash
# Runs every check and test of the project. This is the README's test command, and
# .ci/run calls exactly this. Installs what it needs if missing (nothing today beyond
# the Rust toolchain's rustfmt and clippy components).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "unit, storage-suite and in-process API tests"
cargo test --workspace --locked --lib --test api

step "multi-process cluster tests (real raft3d processes, SIGKILL)"
# Two clusters at a time at most: each test runs 3-5 node processes on a 2-core machine.
cargo test --locked -p raft3d --test processes -- --test-threads=2
