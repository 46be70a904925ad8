#!/usr/bin/env bash
# Installs etcd for `raft3d bench` (the comparison runs Debian's etcd-server at its
# defaults). Needs root. The benchmark itself installs nothing.
set -euo pipefail
if etcd --version >/dev/null 2>&1; then
  etcd --version | head -1
  exit 0
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server
etcd --version | head -1
