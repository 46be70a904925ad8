#!/usr/bin/env bash
# A real OctoPrint (PyPI, pinned in scripts/octoprint/requirements.txt) with its virtual
# printer, for the tests of the OctoPrint driver. Facts about its REST API that the driver
# relies on are in scripts/octoprint/API-FACTS.md.
#
#   scripts/octoprint.sh install
#       Creates the venv target/octoprint-venv (at the repo root) and installs OctoPrint into
#       it. Idempotent: does nothing when the venv already has the pinned version.
#       PYTHON=... picks the interpreter for the venv (default python3).
#   scripts/octoprint.sh start BASEDIR PORT APIKEY
#       Writes BASEDIR/config.yaml (merging into one OctoPrint wrote before, so its secret key
#       and global API key survive a restart), adds the admin user `farm` if it is not there yet
#       (password $OCTOPRINT_PASSWORD, default "raft3d"), sets farm's API key to APIKEY, then
#       execs `octoprint serve` on 127.0.0.1:PORT in the foreground, so the caller owns the
#       process (SIGKILL is fine; start again on the same BASEDIR to restart). Runs `install`
#       first if the venv is missing (run `install` once beforehand when starting several
#       instances at once). The virtual printer connects by itself: GET /api/connection says
#       "Operational" ~2.9 s after start on a fresh BASEDIR, ~1.7 s on a restart (2 cores).
#       Until then connections are refused, reset, or get a broken status line: retry.
#   scripts/octoprint.sh version
#       Prints the installed OctoPrint version.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/target/octoprint-venv"
REQS="$ROOT/scripts/octoprint/requirements.txt"
VERSION="1.11.8"
OCTOPRINT="$VENV/bin/octoprint"

usage() {
  sed -n '5,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

installed() {
  [[ -x "$OCTOPRINT" ]] && "$OCTOPRINT" --version 2>/dev/null | grep -qx "octoprint, version $VERSION"
}

cmd_install() {
  if installed; then
    "$OCTOPRINT" --version
    return 0
  fi
  rm -rf "$VENV"
  if ! "${PYTHON:-python3}" -m venv "$VENV"; then
    # Debian splits venv out of python3.
    [ "$(id -u)" -eq 0 ] || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    rm -rf "$VENV" && "${PYTHON:-python3}" -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS" -c "$(dirname "$REQS")/constraints.txt"
  installed || { echo "octoprint.sh: install did not give OctoPrint $VERSION" >&2; exit 1; }
  "$OCTOPRINT" --version
}

cmd_start() {
  [[ $# -eq 3 ]] || usage
  local base="$1" port="$2" apikey="$3"
  [[ "$port" =~ ^[0-9]+$ ]] || { echo "octoprint.sh: PORT must be a number" >&2; exit 2; }
  [[ "$apikey" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "octoprint.sh: APIKEY must be [A-Za-z0-9_-]+" >&2; exit 2; }
  installed || cmd_install >&2
  mkdir -p "$base"
  base="$(cd "$base" && pwd)"

  # Our settings, merged over whatever config.yaml OctoPrint wrote on an earlier run (it keeps
  # server.secretKey and the global api.key there). OctoPrint drops keys equal to its
  # defaults when it saves, so some of the explicit defaults below vanish from the file.
  "$VENV/bin/python" - "$base/config.yaml" <<'PY'
import os, sys, yaml

path = sys.argv[1]
ours = {
    "server": {
        # No setup wizard: the instance is usable at once.
        "firstRun": False,
        # No probing of the internet (not reachable here; it would only slow things down).
        "onlineCheck": {"enabled": False},
        # Do not fetch the plugin blacklist from plugins.octoprint.org.
        "pluginBlacklist": {"enabled": False},
    },
    "plugins": {
        # Bundled plug-ins that call out to the internet (or nag): without this OctoPrint
        # takes ~30 s to start on a machine without internet.
        "_disabled": [
            "announcements", "pluginmanager", "softwareupdate", "tracking",
            "health_check", "errortracking", "discovery", "achievements",
        ],
        "virtual_printer": {
            # The virtual printer, reachable as serial port "VIRTUAL".
            "enabled": True,
            # Its defaults inject transmission errors at line numbers 100 (resend),
            # 105 (resend, then stay silent until OctoPrint's 30 s communication timeout),
            # 110 (missing line number) and 115 (checksum mismatch): none, for
            # deterministic timing of longer files.
            "simulated_errors": [],
            # No random resends (the default, made explicit).
            "resend_ratio": 0,
            # Do not send "busy: processing" during G4/M109/M190 (the default, explicit).
            "sendBusy": False,
            # Answer after a resend with "ok" as Marlin does (the default, explicit).
            "okAfterResend": False,
            # Print "start"/"Marlin: Virtual Marlin!" on connect like a real board after
            # reset; OctoPrint's handshake expects it (the default, explicit).
            "simulateReset": True,
            # Start at 21.3 °C (the default, explicit): temperatures are predictable.
            "ambientTemperature": 21.3,
            # (`throttle` exists among the settings but 1.11.8's virtual printer does not
            # read it; G0/G1 moves take 1/10 of their real duration at their F feed rate,
            # and G4 P<ms> sleeps exactly that long.)
        },
    },
    "serial": {
        # Connect to the virtual printer at start, so it is "Operational" without a
        # POST /api/connection.
        "port": "VIRTUAL",
        "baudrate": 115200,
        "autoconnect": True,
    },
}

def merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v
    return dst

cfg = {}
if os.path.exists(path):
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
merge(cfg, ours)
tmp = path + ".tmp"
with open(tmp, "w") as f:
    yaml.safe_dump(cfg, f, default_flow_style=False)
os.replace(tmp, path)
PY

  if ! "$VENV/bin/python" - "$base/users.yaml" <<'PY'
import os, sys, yaml
p = sys.argv[1]
users = (yaml.safe_load(open(p)) or {}) if os.path.exists(p) else {}
sys.exit(0 if "farm" in users else 1)
PY
  then
    "$OCTOPRINT" --basedir "$base" user add --password "${OCTOPRINT_PASSWORD:-raft3d}" --admin farm >/dev/null
  fi

  # farm's own API key (sent as X-Api-Key). OctoPrint reads users.yaml at start.
  "$VENV/bin/python" - "$base/users.yaml" "$apikey" <<'PY'
import os, sys, yaml
p, key = sys.argv[1], sys.argv[2]
users = yaml.safe_load(open(p))
users["farm"]["apikey"] = key
tmp = p + ".tmp"
with open(tmp, "w") as f:
    yaml.safe_dump(users, f, default_flow_style=False)
os.replace(tmp, p)
PY

  # --iknowwhatimdoing: OctoPrint refuses to run as root otherwise (CI runs as root).
  exec "$OCTOPRINT" --basedir "$base" serve --iknowwhatimdoing --host 127.0.0.1 --port "$port"
}

case "${1:-}" in
  install) shift; [[ $# -eq 0 ]] || usage; cmd_install ;;
  start) shift; cmd_start "$@" ;;
  version) installed && "$OCTOPRINT" --version ;;
  *) usage ;;
esac
