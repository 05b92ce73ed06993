#!/usr/bin/env bash
# Provision a Debian/Ubuntu VPS to run Clawdbot edge. Idempotent: re-running changes only what
# is missing or different, and never replaces an existing passphrase or stack file.
#
#   sudo scripts/setup-vps.sh                 # provision this machine
#   scripts/setup-vps.sh --dry-run            # print every step, change nothing
#   scripts/setup-vps.sh --root /tmp/vps      # lay out files under a target root (CI, images)
#
# Layout (also written to /etc/clawdbot/clawdbot.env, which the units and the CLI read):
#   /opt/clawdbot/app       the code: git-tracked files of this checkout, root-owned, read-only
#   /opt/clawdbot/{venv,node,pulumi}  Python venv, Node.js, Pulumi CLI (pinned, sha256-checked)
#   /etc/clawdbot/          clawdbot.env, passphrase, backup-passphrase, r2.env, alert.env
#   /var/lib/clawdbot/      the service user's: project/ (Pulumi.yaml, Pulumi.prod.yaml, the tenant
#                           registry), state/, work/, pulumi-home/, local-edge/, audit log
#
# Every download (Node.js, the Pulumi CLI, provider plugins) is checked against a SHA-256 pinned
# in this repository before use; without a pin the run refuses before changing anything, and a
# dry run reports it and exits 1.
#
# Secrets: the state passphrase and the backup passphrase are generated from /dev/urandom
# straight into 0600 files and are never printed. Copy the backup passphrase OFF this machine
# (a password manager): without it no backup can be restored.
set -euo pipefail

readonly PULUMI_VERSION="3.272.0"
readonly NODE_VERSION="22.22.0"
readonly SERVICE_USER_DEFAULT="clawdbot"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"
readonly REPO_DIR
readonly PULUMI_PINS="${SCRIPT_DIR}/pulumi-cli.sha256"
readonly NODE_PINS="${SCRIPT_DIR}/node.sha256"
readonly PLUGIN_PINS="${SCRIPT_DIR}/pulumi-plugins.sha256"

DRY_RUN=0
ROOT=""
MIRROR=""
WORKER=0
SERVICE_USER="${SERVICE_USER_DEFAULT}"
PROBLEMS=()

# Temporary files and directories: removed on every exit path (success, die, set -e, signals).
TMP_DIR=""
CLEANUP=()
cleanup() {
  local path
  for path in "${CLEANUP[@]}"; do
    rm -rf -- "${path}"
  done
  if [[ -n "${TMP_DIR}" ]]; then
    rm -rf -- "${TMP_DIR}"
  fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=vps/lib.sh source-path=SCRIPTDIR
source "${SCRIPT_DIR}/vps/lib.sh"

usage() {
  cat <<USAGE
Usage: setup-vps.sh [--dry-run] [--root DIR] [--user NAME] [--mirror DIR|URL] [--worker]

Provision this VPS for Clawdbot edge: service user, the application (git-tracked files of this
checkout, read-only), Python venv and npm packages, Node.js v${NODE_VERSION}, the Pulumi CLI
v${PULUMI_VERSION} and the provider plugins the installed SDKs declare (each download checked
against the sha256 pinned in scripts/*.sha256), the writable project directory with the platform
stack, state directory (0700), passphrase files (0600, from /dev/urandom, never shown), the
layout env file and the hardened systemd units. Safe to run again.

  --dry-run         print what would be done; change nothing. Exits 1 when a real run would
                    refuse (e.g. a download without a pinned sha256)
  --root DIR        install the file layout under DIR instead of / (for CI and image builds);
                    system steps (apt, useradd, chown, venv and npm installs, plugin installs,
                    systemctl) are skipped, and so are downloads unless --mirror is given
  --user NAME       service user (default: ${SERVICE_USER_DEFAULT}); the systemd units run as it
  --mirror DIR|URL  take the archives (same file names) from a local directory or an https
                    mirror instead of nodejs.org / get.pulumi.com; the pins are checked all the same
  --worker          a node of the cluster engine (docs/cluster.md): also install
                    clawdbot-worker.service (the Temporal worker; not started), and leave the
                    drift/health/backup timers disabled, since Temporal schedules replace them
  -h, --help        this text

Fill a missing Pulumi pin with: scripts/pin-pulumi.sh (cross-checks two upstream sources).
USAGE
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1; shift ;;
    --root) [[ $# -ge 2 ]] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --user) [[ $# -ge 2 ]] || die "--user needs a name"; SERVICE_USER="$2"; shift 2 ;;
    --mirror) [[ $# -ge 2 ]] || die "--mirror needs a directory or https URL"; MIRROR="$2"; shift 2 ;;
    --worker) WORKER=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

if [[ -n "${ROOT}" ]]; then
  [[ "${ROOT}" == /* ]] || die "--root must be an absolute path (got ${ROOT})"
  ROOT="${ROOT%/}"
fi
[[ "${SERVICE_USER}" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user ${SERVICE_USER} is not a valid user name"
if [[ -n "${MIRROR}" && "${MIRROR}" != https://* ]]; then
  [[ "${MIRROR}" == /* && -d "${MIRROR}" ]] || die "--mirror must be an existing absolute directory or an https:// URL (got ${MIRROR})"
fi

# System steps only make sense on the real machine, as root.
SYSTEM=1
[[ -n "${ROOT}" ]] && SYSTEM=0
if [[ "${SYSTEM}" -eq 1 && "${DRY_RUN}" -eq 0 && "${EUID}" -ne 0 ]]; then
  die "run as root (sudo), or use --dry-run / --root DIR"
fi
# Under --root, downloads happen only from a mirror (CI and image builds stage the archives).
DOWNLOADS=1
[[ "${SYSTEM}" -eq 0 && -z "${MIRROR}" ]] && DOWNLOADS=0

readonly ETC_DIR="/etc/clawdbot"
readonly ENV_FILE="${ETC_DIR}/clawdbot.env"
readonly DATA_DIR="/var/lib/clawdbot"
readonly STATE_DIR="${DATA_DIR}/state"
readonly PROJECT_DIR="${DATA_DIR}/project"
readonly PULUMI_HOME_DIR="${DATA_DIR}/pulumi-home"
readonly OPT_DIR="/opt/clawdbot"
readonly APP_DIR="${OPT_DIR}/app"
readonly VENV_DIR="${OPT_DIR}/venv"
readonly NODE_DIR="${OPT_DIR}/node"
readonly PULUMI_DIR="${OPT_DIR}/pulumi"
readonly UNIT_DIR="/etc/systemd/system"

case "$(uname -m)" in
  x86_64|amd64) NODE_ARCH="x64"; PULUMI_ARCH="x64"; PLUGIN_ARCH="amd64" ;;
  aarch64|arm64) NODE_ARCH="arm64"; PULUMI_ARCH="arm64"; PLUGIN_ARCH="arm64" ;;
  *) die "no Node.js / Pulumi build for $(uname -m)" ;;
esac
readonly NODE_ARCHIVE="node-v${NODE_VERSION}-linux-${NODE_ARCH}.tar.xz"
readonly PULUMI_ARCHIVE="pulumi-v${PULUMI_VERSION}-linux-${PULUMI_ARCH}.tar.gz"

# Refuse (or, in a dry run, report) before anything changes.
refuse() {
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would refuse: $*"
    PROBLEMS+=("$*")
  else
    die "$*"
  fi
}

step_preflight() {
  say "preflight: pinned downloads"
  [[ "${DOWNLOADS}" -eq 1 ]] || { echo "skipped (target root, no --mirror): downloads and their pins"; return 0; }
  local problem
  problem="$(pin_problem "${NODE_PINS}" "${NODE_ARCHIVE}")"
  [[ -z "${problem}" ]] || refuse "${problem} (take it from https://nodejs.org/dist/v${NODE_VERSION}/SHASUMS256.txt)"
  problem="$(pin_problem "${PULUMI_PINS}" "${PULUMI_ARCHIVE}")"
  [[ -z "${problem}" ]] || refuse "${problem} (fill it with scripts/pin-pulumi.sh, then review and commit)"
  # Plugins are installed on the real machine only (their versions come from the venv).
  if [[ "${SYSTEM}" -eq 1 ]] \
    && ! grep -Eq "^[0-9a-f]{64}  pulumi-resource-.*-linux-${PLUGIN_ARCH}\.tar\.gz$" "${PLUGIN_PINS}"; then
    refuse "no provider plugin pinned for linux-${PLUGIN_ARCH} in ${PLUGIN_PINS} (fill it with scripts/pin-pulumi.sh)"
  fi
}

step_packages() {
  say "packages"
  sys_run apt-get update
  # No Debian nodejs/npm: bookworm ships Node 18, the Worker's lock needs 20+ (see step_node).
  sys_run apt-get install -y --no-install-recommends python3 python3-venv ca-certificates curl git xz-utils
}

step_user() {
  say "service user ${SERVICE_USER}"
  if [[ "${SYSTEM}" -eq 1 ]] && id -u "${SERVICE_USER}" >/dev/null 2>&1; then
    say "user ${SERVICE_USER} exists"
    return 0
  fi
  sys_run useradd --system --home-dir "${DATA_DIR}" --shell /usr/sbin/nologin "${SERVICE_USER}"
}

step_dirs() {
  say "directories"
  local owner="${SERVICE_USER}:${SERVICE_USER}" dir
  # Parents are only created when missing; their modes are the system's business.
  run mkdir -p "${ROOT}/etc" "${ROOT}/var/lib" "${ROOT}/opt" "${ROOT}${UNIT_DIR}"
  ensure_dir "${ETC_DIR}" 0750 "root:${SERVICE_USER}"
  ensure_dir "${DATA_DIR}" 0700 "${owner}"
  for dir in state project work pulumi-home local-edge; do
    ensure_dir "${DATA_DIR}/${dir}" 0700 "${owner}"
  done
  ensure_dir "${OPT_DIR}" 0755
}

step_secrets() {
  say "passphrases (never displayed)"
  ensure_secret_file "${ETC_DIR}/passphrase" "${SERVICE_USER}:${SERVICE_USER}"
  ensure_secret_file "${ETC_DIR}/backup-passphrase" "${SERVICE_USER}:${SERVICE_USER}"
  ensure_template "${ETC_DIR}/r2.env" 0600 <<ENV
# R2 API token (Object Read & Write on the backup bucket; on a cluster node also on the state
# bucket of CLAWDBOT_STATE_BACKEND). Read by systemd as root.
AWS_ACCESS_KEY_ID=
AWS_SECRET_ACCESS_KEY=
ENV
}

# The layout: setup-vps.sh owns these keys (the units' paths depend on them) and resets them on
# every run; every other line of the file is the operator's and is kept.
step_env_file() {
  say "layout env file ${ROOT}${ENV_FILE}"
  ensure_tmp_dir
  # A hand-run `pulumi` must see the fleet's state: on R2 when the operator set CLAWDBOT_STATE_BACKEND
  # (checked by the CLI and `doctor`), else the state directory.
  local backend="file://${STATE_DIR}" shared=""
  [[ -f "${ROOT}${ENV_FILE}" ]] && shared="$(sed -n 's/^CLAWDBOT_STATE_BACKEND=//p' "${ROOT}${ENV_FILE}" | tail -n 1)"
  [[ -n "${shared}" ]] && backend="${shared}"
  cat > "${TMP_DIR}/env-defaults" <<ENV
CLAWDBOT_R2_ENDPOINT=https://ACCOUNT_ID.r2.cloudflarestorage.com
CLAWDBOT_R2_BUCKET=clawdbot-backups
ENV
  merge_env_file "${ENV_FILE}" "${TMP_DIR}/env-defaults" \
    "# Clawdbot edge layout, read by the systemd units and the CLI. No secret values: only paths.
# setup-vps.sh resets the layout keys on every run; add your own settings (R2) below them." <<ENV
CLAWDBOT_CODE_DIR=${APP_DIR}
CLAWDBOT_PROJECT_DIR=${PROJECT_DIR}
CLAWDBOT_STATE_DIR=${STATE_DIR}
PULUMI_BACKEND_URL=${backend}
CLAWDBOT_PASSPHRASE_FILE=${ETC_DIR}/passphrase
PULUMI_CONFIG_PASSPHRASE_FILE=${ETC_DIR}/passphrase
CLAWDBOT_BACKUP_PASSPHRASE_FILE=${ETC_DIR}/backup-passphrase
CLAWDBOT_WORK_ROOT=${DATA_DIR}/work
CLAWDBOT_AUDIT_LOG=${DATA_DIR}/audit.jsonl
CLAWDBOT_BACKUP_MARKER=${DATA_DIR}/last-backup.json
CLAWDBOT_LOCAL_EDGE_DIR=${DATA_DIR}/local-edge
CLAWDBOT_PULUMI_ROOT=${PULUMI_DIR}
PULUMI_HOME=${PULUMI_HOME_DIR}
PULUMI_SKIP_UPDATE_CHECK=true
ENV
}

# The files of this checkout that git tracks, NUL-separated, without the stack files
# (Pulumi.<stack>.yaml are the operator's data: the repo's examples never overwrite them) and
# without tracked files deleted from the work tree.
tracked_files() {
  local file
  # safe.directory: run as root (sudo) on a checkout owned by the operator, git would refuse.
  # Stack files are the operator's data, never code; the one exception is the shipped example
  # platform stack, which the package carries (pyproject.toml force-include) and so its build needs.
  {
    git -c safe.directory="${REPO_DIR}" -C "${REPO_DIR}" ls-files -z -- . ':(exclude,glob)**/Pulumi.*.yaml'
    git -c safe.directory="${REPO_DIR}" -C "${REPO_DIR}" ls-files -z -- ':(top,literal)Pulumi.prod.yaml'
  } |
    while IFS= read -r -d '' file; do
      if [[ -e "${REPO_DIR}/${file}" || -L "${REPO_DIR}/${file}" ]]; then
        printf '%s\0' "${file}"
      fi
    done
}

# The code goes to a fresh directory that replaces the old one, so files deleted from the
# repository do not linger; nobody but root can write it.
copy_app() {
  local target="${ROOT}${APP_DIR}" list count
  git -c safe.directory="${REPO_DIR}" -C "${REPO_DIR}" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || die "${REPO_DIR} is not a git checkout: the application is copied from git-tracked files only" \
      "(clone the repository and run this script from the clone)"
  # The code dir is world-readable: an operator's real platform stack (a salt, secrets) stays out.
  if grep -Eq '^encryptionsalt:|secure:' "${REPO_DIR}/Pulumi.prod.yaml" 2>/dev/null; then
    die "${REPO_DIR}/Pulumi.prod.yaml holds an encryptionsalt or secure values: it is a real stack, not the" \
      "example; keep it in ${PROJECT_DIR} only and restore the example in the checkout (git checkout -- Pulumi.prod.yaml)"
  fi
  ensure_tmp_dir
  list="${TMP_DIR}/app-files"
  tracked_files > "${list}"
  count="$(tr -cd '\0' < "${list}" | wc -c)"
  [[ "${count}" -gt 0 ]] || die "git lists no tracked files in ${REPO_DIR}"
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would copy ${count} git-tracked files of ${REPO_DIR} to ${target} (read-only; no stack file but the example Pulumi.prod.yaml, no untracked files)"
    return 0
  fi
  rm -rf -- "${target}.new" "${target}.old"
  mkdir -p "${target}.new"
  CLEANUP+=("${target}.new")
  tar -C "${REPO_DIR}" --null --no-recursion -T "${list}" -cf - | tar -C "${target}.new" --no-same-owner -xf -
  chmod -R u+rwX,go+rX,go-w "${target}.new"
  if [[ -d "${target}" ]]; then
    mv -- "${target}" "${target}.old"
  fi
  mv -- "${target}.new" "${target}"
  rm -rf -- "${target}.old"
  say "copied ${count} git-tracked files to ${target}"
}

step_app() {
  say "application (read-only)"
  copy_app
  sys_run chown -R root:root "${ROOT}${APP_DIR}"
}

step_node() {
  say "Node.js v${NODE_VERSION} (${NODE_ARCHIVE})"
  install_archive "${NODE_PINS}" "${NODE_ARCHIVE}" \
    "https://nodejs.org/dist/v${NODE_VERSION}/${NODE_ARCHIVE}" "${NODE_DIR}" bin/node --strip-components=1
  local tool
  for tool in node npm npx; do
    sys_run ln -sfn "${NODE_DIR}/bin/${tool}" "/usr/local/bin/${tool}"
  done
}

step_pulumi() {
  say "Pulumi CLI v${PULUMI_VERSION} (${PULUMI_ARCHIVE})"
  # The archive holds pulumi/{pulumi,pulumi-language-python,...}; CLAWDBOT_PULUMI_ROOT wants bin/.
  install_archive "${PULUMI_PINS}" "${PULUMI_ARCHIVE}" \
    "https://get.pulumi.com/releases/sdk/${PULUMI_ARCHIVE}" "${PULUMI_DIR}" bin/pulumi \
    --transform 's,^pulumi/,bin/,'
  sys_run ln -sfn "${PULUMI_DIR}/bin/pulumi" /usr/local/bin/pulumi
}

# The venv holds exactly the hash-locked runtime packages plus this package, which gives the units
# their `clawdbot-edge` console script. The package is built here from the code directory, offline
# (--no-build-isolation, --no-index), by a throwaway venv holding only the hash-locked build backend
# (requirements-build.txt): pip's build isolation would download an unpinned hatchling.
step_venv() {
  say "Python venv (hash-locked packages + the clawdbot-edge package) and the local edge's npm packages"
  if [[ "${SYSTEM}" -eq 0 ]]; then
    echo "skipped (target root): venv ${VENV_DIR}, pip install of the lock and the package, npm ci"
    return 0
  fi
  ensure_tmp_dir
  if [[ ! -x "${VENV_DIR}/bin/python" ]]; then
    run python3 -m venv "${VENV_DIR}"
  fi
  run "${VENV_DIR}/bin/pip" install --quiet --require-virtualenv --require-hashes --no-deps \
    -r "${APP_DIR}/requirements.txt"
  local build="${TMP_DIR}/build"
  run python3 -m venv "${build}/venv"
  run "${build}/venv/bin/pip" install --quiet --require-virtualenv --require-hashes --no-deps \
    -r "${APP_DIR}/requirements-build.txt"
  run "${build}/venv/bin/pip" wheel --quiet --no-deps --no-build-isolation --no-index \
    --wheel-dir "${build}/wheel" "${APP_DIR}"
  # --force-reinstall: after a `git pull` the version may be unchanged but the code is not.
  run "${VENV_DIR}/bin/pip" install --quiet --require-virtualenv --no-deps --no-index --force-reinstall \
    --find-links "${build}/wheel" clawdbot-edge
  # The local edge runs Miniflare from the installed package's worker sources (core.contract.WORKER_SRC).
  local worker_src="(the installed package's worker_src)"
  if [[ "${DRY_RUN}" -eq 0 ]]; then
    worker_src="$("${VENV_DIR}/bin/python" -c 'from orchestrator.core.contract import WORKER_SRC; print(WORKER_SRC)')"
  fi
  run env PATH="${NODE_DIR}/bin:${PATH}" npm ci --prefix "${worker_src}" --no-audit --no-fund
}

# The provider plugins, installed once here (the fleet's runs then find them in PULUMI_HOME), at
# the exact versions the installed SDKs declare in their pulumi-plugin.json: the same metadata
# the Python language host reads (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go,
# determinePluginDependency).
step_plugins() {
  say "provider plugins (exact versions from the installed SDKs)"
  if [[ "${SYSTEM}" -eq 0 ]]; then
    echo "skipped (target root): pulumi plugin install for each SDK's pulumi-plugin.json into ${PULUMI_HOME_DIR}"
    return 0
  fi
  if [[ "${DRY_RUN}" -eq 1 && ! -x "${VENV_DIR}/bin/python" ]]; then
    echo "would install the plugins the venv's SDKs declare, each checked against ${PLUGIN_PINS}"
    return 0
  fi
  local kind name version archive dest problem
  ensure_tmp_dir
  "${VENV_DIR}/bin/python" "${SCRIPT_DIR}/vps/provider_plugins.py" > "${TMP_DIR}/plugins"
  [[ -s "${TMP_DIR}/plugins" ]] || die "the venv's SDKs declare no provider plugin: is ${VENV_DIR} complete?"
  while read -r kind name version; do
    archive="pulumi-${kind}-${name}-v${version}-linux-${PLUGIN_ARCH}.tar.gz"
    if [[ -d "${PULUMI_HOME_DIR}/plugins/${kind}-${name}-v${version}" ]]; then
      say "plugin ${kind} ${name} v${version} already installed"
      continue
    fi
    if [[ "${DRY_RUN}" -eq 1 ]]; then
      problem="$(pin_problem "${PLUGIN_PINS}" "${archive}")"
      [[ -z "${problem}" ]] || refuse "${problem} (fill it with scripts/pin-pulumi.sh)"
      echo "would download ${archive}, check its sha256, pulumi plugin install ${kind} ${name} ${version} --file it"
      continue
    fi
    dest="${TMP_DIR}/${archive}"
    fetch_verified "${PLUGIN_PINS}" "${archive}" \
      "https://get.pulumi.com/releases/plugins/${archive}" "${dest}"
    PULUMI_HOME="${PULUMI_HOME_DIR}" PULUMI_SKIP_UPDATE_CHECK=true \
      "${PULUMI_DIR}/bin/pulumi" plugin install "${kind}" "${name}" "${version}" --file "${dest}"
  done < "${TMP_DIR}/plugins"
  run chown -R "${SERVICE_USER}:${SERVICE_USER}" "${PULUMI_HOME_DIR}"
}

# The project directory the CLI and units use (CLAWDBOT_PROJECT_DIR): Pulumi.yaml from the code,
# the platform stack copied once (then it is the operator's), and the tenant registry that
# `tenants add` fills. Owned by the service user, so registry and secret edits can be written.
step_project() {
  say "project directory ${ROOT}${PROJECT_DIR}"
  local owner="${SERVICE_USER}:${SERVICE_USER}" platform="${ROOT}${PROJECT_DIR}/Pulumi.prod.yaml"
  ensure_file "${REPO_DIR}/Pulumi.yaml" "${PROJECT_DIR}/Pulumi.yaml" 0644
  if [[ -e "${platform}" ]]; then
    say "kept existing ${platform}"
  else
    git -c safe.directory="${REPO_DIR}" -C "${REPO_DIR}" ls-files --error-unmatch Pulumi.prod.yaml >/dev/null 2>&1 \
      || die "Pulumi.prod.yaml (the platform stack) is not tracked in ${REPO_DIR}"
    run install -m 0600 "${REPO_DIR}/Pulumi.prod.yaml" "${platform}"
  fi
  sys_run chown "${owner}" "${ROOT}${PROJECT_DIR}/Pulumi.yaml" "${platform}"
}

# A unit file with its service user set to --user (the repo's units say clawdbot).
render_unit() {  # render_unit SOURCE OUTPUT
  local source="$1" output="$2"
  sed -e "s/^User=${SERVICE_USER_DEFAULT}\$/User=${SERVICE_USER}/" \
    -e "s/^Group=${SERVICE_USER_DEFAULT}\$/Group=${SERVICE_USER}/" "${source}" > "${output}"
  if [[ "${source}" == *.service ]] && ! grep -qx "User=${SERVICE_USER}" "${output}"; then
    die "$(basename "${source}") has no User=${SERVICE_USER_DEFAULT} line to set to ${SERVICE_USER}"
  fi
}

step_units() {
  say "systemd units (User=${SERVICE_USER})"
  local unit rendered dropin="clawdbot-.service.d"
  ensure_tmp_dir
  mkdir -p "${TMP_DIR}/units"
  local -a units=("${SCRIPT_DIR}"/systemd/*.service "${SCRIPT_DIR}"/systemd/*.timer)
  [[ "${WORKER}" -eq 1 ]] && units+=("${SCRIPT_DIR}"/systemd/cluster/*.service)
  for unit in "${units[@]}"; do
    rendered="${TMP_DIR}/units/$(basename "${unit}")"
    render_unit "${unit}" "${rendered}"
    ensure_file "${rendered}" "${UNIT_DIR}/$(basename "${unit}")" 0644
  done
  ensure_dir "${UNIT_DIR}/${dropin}" 0755
  for unit in "${SCRIPT_DIR}/systemd/${dropin}"/*.conf; do
    ensure_file "${unit}" "${UNIT_DIR}/${dropin}/$(basename "${unit}")" 0644
  done
  sys_run systemctl daemon-reload
  for unit in "${SCRIPT_DIR}"/systemd/*.timer; do
    if [[ "${WORKER}" -eq 1 ]]; then
      # Every node running them would refresh and back up the one shared state N times over.
      sys_run systemctl disable --now "$(basename "${unit}")"
    else
      sys_run systemctl enable --now "$(basename "${unit}")"
    fi
  done
  if [[ "${WORKER}" -eq 1 ]]; then
    say "clawdbot-worker.service installed, not started: set the Temporal address in ${ENV_FILE}," \
      "then \`systemctl enable --now clawdbot-worker.service\` (docs/cluster.md)"
  fi
}

main() {
  [[ "${DRY_RUN}" -eq 1 ]] && say "dry run: nothing will be changed"
  [[ -n "${ROOT}" ]] && say "target root: ${ROOT}"
  step_preflight
  step_packages
  step_user
  step_dirs
  step_secrets
  step_env_file
  step_app
  step_node
  step_pulumi
  step_venv
  step_plugins
  step_project
  step_units
  if [[ "${#PROBLEMS[@]}" -gt 0 ]]; then
    echo "setup-vps: dry run: a real run would refuse (${#PROBLEMS[@]} problem(s)):" >&2
    printf '  - %s\n' "${PROBLEMS[@]}" >&2
    exit 1
  fi
  say "done. Next, as ${SERVICE_USER} (the CLI reads ${ENV_FILE} itself): write the platform stack," \
    "fill ${ETC_DIR}/r2.env, copy ${ETC_DIR}/backup-passphrase off this machine, check the host:"
  echo "  sudo -u ${SERVICE_USER} ${VENV_DIR}/bin/clawdbot-edge platform init"
  echo "  sudo -u ${SERVICE_USER} ${VENV_DIR}/bin/clawdbot-edge doctor"
}

main
