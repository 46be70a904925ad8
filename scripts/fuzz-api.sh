#!/usr/bin/env bash
# Fuzzes every operation of the API's OpenAPI document (/api/v1/openapi.json) against a
# real, secured 3-node cluster of the release `raft3d` binary (`raft3d cluster`: TLS
# between peers, tokens on the API), with Schemathesis (PyPI, pinned in
# scripts/fuzz/requirements.txt, installed into target/fuzz-venv if missing). Fails on
# any 5xx, any answer its schema or the document's statuses and headers do not allow,
# valid data refused as malformed, invalid data accepted, or a node that stopped.
# Needs: target/release/raft3d, python3 with venv. Extra arguments go to `st run`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/fuzz-venv
if [ ! -x "$VENV/bin/st" ]; then
  if ! python3 -m venv "$VENV"; then
    # Debian splits venv out of python3.
    [ "$(id -u)" -eq 0 ] || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    rm -rf "$VENV" && python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/fuzz/requirements.txt
fi

ROOT="$(mktemp -d)"
HTTP_PORT="${FUZZ_HTTP_PORT:-18381}"
RAFT_PORT="${FUZZ_RAFT_PORT:-18391}"
# Short waits: a min_index a follower never reaches answers within a second.
./target/release/raft3d cluster --data-dir "$ROOT" --http-port "$HTTP_PORT" \
  --raft-port "$RAFT_PORT" --log warn -- --write-timeout-ms 1000 >"$ROOT/cluster.log" 2>&1 &
CLUSTER=$!
trap 'kill $CLUSTER 2>/dev/null; wait $CLUSTER 2>/dev/null; rm -rf "$ROOT"' EXIT

LEADER=""
for _ in $(seq 1 100); do
  LEADER="$(curl -sf "http://127.0.0.1:$HTTP_PORT/api/v1/cluster" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader_url") or "")' 2>/dev/null || true)"
  [ -n "$LEADER" ] && break
  sleep 0.2
done
[ -n "$LEADER" ] || { echo "no leader" >&2; cat "$ROOT/cluster.log" >&2; exit 1; }
LEADER="${LEADER%/}"
TOKEN="$(cat "$ROOT/pki/admin.token")"
# The objects the document's examples name (a job names a printer and a spool), so that
# the fuzzer's jobs reach the farm's rules and their links (get, status moves) real jobs.
seed() {
  curl -sf -X POST "$LEADER/api/v1/$1" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d "$2" >/dev/null
}
seed printers '{"id":"prusa-1","company":"Prusa","model":"MK4"}'
seed filaments '{"id":"pla-red-1","type":"PLA","color":"red","total_weight_in_grams":1000000000000}'
echo "fuzzing $LEADER (3 nodes, secured)"

# Left out, each for a reason that is not the fuzzer's business:
# - followEvents: an endless stream (tests: server/tests/api/events.rs, processes/events.rs);
# - addNode, removeNode: they change the membership (tests: api/membership.rs, processes).
# A seed makes a failure reproducible: `scripts/fuzz-api.sh --seed N`.
# One worker (as fast here: 2 cores, 3 nodes): with two, Hypothesis parses lambdas' source
# in two threads at once, and CI's CPython 3.11.7 failed twice with "AST constructor
# recursion depth mismatch" (CPython gh-106905), an error of the fuzzer, not of Raft3D.
set +e
"$VENV/bin/st" --config-file scripts/fuzz/schemathesis.toml run "$LEADER/api/v1/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all \
  --exclude-operation-id followEvents \
  --exclude-operation-id addNode \
  --exclude-operation-id removeNode \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${FUZZ_EXAMPLES:-60}" \
  --request-timeout 10 --max-redirects 0 --workers 1 \
  --seed "${FUZZ_SEED:-1}" --output-truncate false "$@"
STATUS=$?
set -e

# Every node must have lived through it.
for i in 0 1 2; do
  port=$((HTTP_PORT + i))
  if ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
    echo "node $((i + 1)) (port $port) does not answer after the fuzzing run" >&2
    tail -50 "$ROOT/cluster.log" >&2
    STATUS=1
  fi
done
exit $STATUS
