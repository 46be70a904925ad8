#!/usr/bin/env bash
# Runs the dashboard's Playwright tests (end2end/) against real 3-node clusters of the
# release `raft3d` binary, which must be built with its bundle first
# (scripts/build-dashboard.sh, cargo build --release). Installs Debian's Chromium and the
# pinned npm packages if missing; never downloads a browser. Extra arguments go to
# `playwright test`. Screenshots of every page land in end2end/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "Chromium is missing: run 'sudo apt-get install -y chromium'" >&2
    exit 1
  fi
fi
cd end2end
[ -d node_modules/@playwright/test ] || npm ci --no-audit --no-fund
CHROMIUM_PATH="$(command -v chromium)" RAFT3D_BIN="$PWD/../target/release/raft3d" \
  npx playwright test "$@"
