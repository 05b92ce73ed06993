#!/usr/bin/env bash
# Regenerate the hashed locks from what the project declares:
#   requirements.txt      <- pyproject.toml [project.dependencies] (runtime: the program and the control plane)
#   requirements-dev.txt  <- requirements-dev.in (tests, lint, packaging), constrained to requirements.txt
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
echo "locked: requirements.txt ($(grep -c '==' requirements.txt) packages), requirements-dev.txt ($(grep -c '==' requirements-dev.txt) packages)"
