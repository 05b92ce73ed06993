#!/usr/bin/env bash
# Regenerate the hashed locks from what the project declares:
#   requirements.txt      <- pyproject.toml [project.dependencies] (runtime: the program and the control plane)
#   requirements-dev.txt  <- requirements-dev.in (tests, lint, packaging), constrained to requirements.txt
#   requirements-build.txt <- requirements-build.in (the build backend setup-vps.sh builds the wheel with),
#                            constrained to requirements-dev.txt (the versions the packaging test builds with)
# Every transitive package is pinned with its hashes, so a VPS installs exactly what CI tested.
# Add a dependency to pyproject.toml or requirements-dev.in, never to the .txt files, then run this.
# Needs the package index; uses a throwaway venv for pip-tools, so .venv is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.5.2"

compile() {
  "$tools/bin/pip-compile" --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links "$@"
}
compile --output-file requirements.txt pyproject.toml
compile --output-file requirements-dev.txt --constraint requirements.txt requirements-dev.in
CUSTOM_COMPILE_COMMAND="scripts/lock.sh  (pip-compile from requirements-build.in, constrained to requirements-dev.txt)" \
  compile --output-file requirements-build.txt --constraint requirements-dev.txt requirements-build.in
echo "locked: requirements.txt ($(grep -c '==' requirements.txt) packages), requirements-dev.txt ($(grep -c '==' requirements-dev.txt) packages), requirements-build.txt ($(grep -c '==' requirements-build.txt) packages)"
