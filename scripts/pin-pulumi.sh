#!/usr/bin/env bash
# Fill scripts/pulumi-cli.sha256 and scripts/pulumi-plugins.sha256 for setup-vps.sh: the Pulumi
# CLI at the version setup-vps.sh installs and the provider plugins the venv's SDKs declare,
# for linux x64/amd64 and arm64.
#
#   scripts/pin-pulumi.sh                     # download from get.pulumi.com and GitHub releases
#   scripts/pin-pulumi.sh --sources DIR DIR   # archives fetched by other means, two copies
#
# Trust comes from agreement: every archive is taken from two independent sources (Pulumi's
# download host and the GitHub release) and must be byte-identical in both; the CLI archives
# must also match the release's pulumi-<version>-checksums.txt, itself identical in both places.
# Only then are the sha256 lines appended. Nothing is written on any disagreement. Review the
# diff and commit it; re-running adds nothing already pinned.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly CLI_PINS="${SCRIPT_DIR}/pulumi-cli.sha256"
readonly PLUGIN_PINS="${SCRIPT_DIR}/pulumi-plugins.sha256"
PYTHON="${SCRIPT_DIR}/../.venv/bin/python"
SOURCE_A=""
SOURCE_B=""

die() { echo "pin-pulumi: error: $*" >&2; exit 1; }
say() { echo "pin-pulumi: $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --sources) [[ $# -ge 3 ]] || die "--sources needs two directories"; SOURCE_A="$2"; SOURCE_B="$3"; shift 3 ;;
    --python) [[ $# -ge 2 ]] || die "--python needs a path"; PYTHON="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
if [[ -n "${SOURCE_A}" ]]; then
  [[ -d "${SOURCE_A}" && -d "${SOURCE_B}" ]] || die "--sources: ${SOURCE_A} and ${SOURCE_B} must be directories"
  [[ "$(cd "${SOURCE_A}" && pwd -P)" != "$(cd "${SOURCE_B}" && pwd -P)" ]] || die "--sources: two different copies are needed"
fi
[[ -x "${PYTHON}" ]] || die "${PYTHON} not found: create the venv first (bash scripts/test.sh) or pass --python"

version="$(sed -n 's/^readonly PULUMI_VERSION="\(.*\)"$/\1/p' "${SCRIPT_DIR}/setup-vps.sh")"
[[ "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no PULUMI_VERSION in setup-vps.sh"

WORK="$(mktemp -d)"
trap 'rm -rf -- "${WORK}"' EXIT
mkdir -p "${WORK}/a" "${WORK}/b"

# fetch NAME URL_A URL_B: both copies of NAME into WORK/a and WORK/b.
fetch() {
  local name="$1" side url
  for side in a b; do
    if [[ -n "${SOURCE_A}" ]]; then
      url="$([[ "${side}" == a ]] && echo "${SOURCE_A}" || echo "${SOURCE_B}")/${name}"
      [[ -f "${url}" ]] || die "${url} is missing"
      cp -- "${url}" "${WORK}/${side}/${name}"
    else
      url="$([[ "${side}" == a ]] && echo "$2" || echo "$3")"
      say "downloading ${url}"
      curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 -o "${WORK}/${side}/${name}" "${url}" \
        || die "could not download ${url}"
    fi
  done
  cmp -s "${WORK}/a/${name}" "${WORK}/b/${name}" \
    || die "${name} differs between the two sources; pinning nothing"
}

lines="${WORK}/lines"
: > "${lines}"
pin() {  # pin PIN_FILE NAME: record NAME's sha256 for PIN_FILE unless already there
  local sum
  sum="$(sha256sum "${WORK}/a/$2" | awk '{ print $1 }')"
  if grep -q "  $2\$" "$1"; then
    grep -qx "${sum}  $2" "$1" || die "$1 already pins $2 with another sha256; resolve that by hand"
    say "already pinned: $2"
    return 0
  fi
  printf '%s\t%s  %s\n' "$1" "${sum}" "$2" >> "${lines}"
}

checksums="pulumi-${version}-checksums.txt"
fetch "${checksums}" "https://get.pulumi.com/releases/sdk/${checksums}" \
  "https://github.com/pulumi/pulumi/releases/download/v${version}/${checksums}"
for arch in x64 arm64; do
  archive="pulumi-v${version}-linux-${arch}.tar.gz"
  fetch "${archive}" "https://get.pulumi.com/releases/sdk/${archive}" \
    "https://github.com/pulumi/pulumi/releases/download/v${version}/${archive}"
  sum="$(sha256sum "${WORK}/a/${archive}" | awk '{ print $1 }')"
  grep -Eq "^${sum}[[:space:]]+\*?${archive}\$" "${WORK}/a/${checksums}" \
    || die "${archive}: sha256 ${sum} is not the one in ${checksums}; pinning nothing"
  pin "${CLI_PINS}" "${archive}"
done

"${PYTHON}" "${SCRIPT_DIR}/vps/provider_plugins.py" > "${WORK}/plugins"
[[ -s "${WORK}/plugins" ]] || die "the venv's SDKs declare no provider plugin"
while read -r kind name plugin_version; do
  for arch in amd64 arm64; do
    archive="pulumi-${kind}-${name}-v${plugin_version}-linux-${arch}.tar.gz"
    fetch "${archive}" "https://get.pulumi.com/releases/plugins/${archive}" \
      "https://github.com/pulumi/pulumi-${name}/releases/download/v${plugin_version}/${archive}"
    pin "${PLUGIN_PINS}" "${archive}"
  done
done < "${WORK}/plugins"

# Everything agreed: write all lines at once.
while IFS=$'\t' read -r file line; do
  printf '%s\n' "${line}" >> "${file}"
  say "pinned ${line} in $(basename "${file}")"
done < "${lines}"
say "done; review \`git diff scripts/*.sha256\` and commit it"
