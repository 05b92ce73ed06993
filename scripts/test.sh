#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what it needs, then runs lint,
# the import layers, types, the Worker's tests in workerd, the policy pack over every tenant, and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  python3 -m venv .venv
fi
step "installing Python packages (requirements.txt, requirements-dev.txt)"
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
step "installing the Worker's npm packages (worker_src/package-lock.json)"
(cd worker_src && npm ci --no-audit --no-fund --loglevel=error)

step "headless Chromium for the control room's page test (Debian's package, never a downloaded browser)"
if [ -x /usr/bin/chromium ]; then
  echo "found /usr/bin/chromium"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } ||
    echo "could not install chromium with apt: the browser test will skip, saying so"
else
  echo "no /usr/bin/chromium and no root apt-get here: the browser test will skip, saying so"
fi

step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "import layers (import-linter contracts in pyproject.toml)"
.venv/bin/lint-imports
step "mypy (strict)"
.venv/bin/mypy orchestrator components policies/clawdbot_policies tests bench __main__.py
step "Worker tests in workerd (Miniflare)"
(cd worker_src && npm test)
step "policy pack over every tenant stack"
.venv/bin/python -m orchestrator policy check --all
step "pytest"
.venv/bin/python -m pytest -q "$@"
