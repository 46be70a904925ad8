#!/usr/bin/env bash
# Installs etcd for the benchmark (`raft3d-bench`, the bench/ crate), which compares
# Raft3D with Debian's etcd-server at its defaults. Needs root. The benchmark itself
# installs nothing.
set -euo pipefail
if etcd --version >/dev/null 2>&1; then
  etcd --version | head -1
  exit 0
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server
etcd --version | head -1
