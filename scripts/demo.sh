#!/usr/bin/env bash
# The first command on a fresh machine: installs what the demo needs, then runs it.
#
#   scripts/demo.sh [demo options]      e.g. scripts/demo.sh --config-ttl 2
#
# Idempotent: creates .venv only if missing, installs the pinned requirements.txt into it, runs
# `npm ci` in worker_src only when its node_modules do not match package-lock.json, then runs
# `python -m orchestrator demo` (a scratch project with fresh secrets; nothing of yours is touched).
# Needs python3 (3.11+) and node (20+) with npm on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '==> %s\n' "$*"; }
die() { printf 'Error: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed (need 3.11 or newer)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 is $(python3 -V 2>&1); need 3.11 or newer"
command -v node >/dev/null || die "node is not installed (need Node.js 20 or newer)"
command -v npm >/dev/null || die "npm is not installed (it ships with Node.js)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
  || die "node is $(node --version); need 20 or newer"

if [[ ! -x .venv/bin/python ]]; then
  say "creating the Python virtualenv in .venv"
  python3 -m venv .venv
  # pip is quiet: say why the next step takes a while, the first time only
  say "installing Python requirements (pinned) into .venv: the first time, $(grep -cE '^[A-Za-z]' requirements.txt) packages (a few minutes)"
else
  say "installing Python requirements (pinned) into .venv"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

# npm ci wipes and reinstalls node_modules: skip it when the installed tree matches the lock file
# (npm keeps a copy of what it installed in node_modules/.package-lock.json).
node_modules_current() {
  node -e '
    const want = require("./worker_src/package-lock.json").packages;
    const have = require("./worker_src/node_modules/.package-lock.json").packages;
    const stale = Object.keys(want).filter((k) => k !== "" && !want[k].optional && have[k]?.version !== want[k].version);
    process.exit(stale.length ? 1 : 0);
  ' 2>/dev/null
}
if node_modules_current; then
  say "worker_src/node_modules is up to date"
else
  say "installing the Worker's npm packages (npm ci in worker_src)"
  (cd worker_src && npm ci --no-audit --no-fund --loglevel=error)
fi

say "running the demo"
exec .venv/bin/python -m orchestrator demo "$@"
