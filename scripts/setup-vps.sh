#!/usr/bin/env bash
# Provision a Debian/Ubuntu VPS to run Clawdbot edge. Idempotent: re-running changes only what
# is missing or different, and never replaces an existing passphrase.
#
#   sudo scripts/setup-vps.sh                 # provision this machine
#   scripts/setup-vps.sh --dry-run            # print every step, change nothing
#   scripts/setup-vps.sh --root /tmp/vps      # lay out files under a target root (CI); skips
#                                             # apt, useradd, chown, downloads and systemctl
#
# The application is copied from the git-tracked files of this checkout only: a stray .env,
# a local venv or other untracked files never reach the VPS's app directory.
#
# Secrets: the state passphrase and the backup passphrase are generated from /dev/urandom
# straight into 0600 files and are never printed. Copy the backup passphrase OFF this machine
# (a password manager): without it no backup can be restored.
set -euo pipefail

readonly PULUMI_VERSION="3.272.0"
readonly SERVICE_USER_DEFAULT="clawdbot"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"
readonly REPO_DIR
readonly PIN_FILE="${SCRIPT_DIR}/pulumi-cli.sha256"

DRY_RUN=0
ROOT=""
SERVICE_USER="${SERVICE_USER_DEFAULT}"

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

# The script's private scratch directory (created on first use, in this shell: never call it in $(...)).
ensure_tmp_dir() {
  if [[ -z "${TMP_DIR}" ]]; then
    TMP_DIR="$(mktemp -d)"
  fi
}

usage() {
  cat <<USAGE
Usage: setup-vps.sh [--dry-run] [--root DIR] [--user NAME]

Provision this VPS for Clawdbot edge: service user, the application (git-tracked files of this
checkout), Python venv and npm packages, the Pulumi CLI v${PULUMI_VERSION} (sha256-verified against
scripts/pulumi-cli.sha256), state directory (0700), passphrase files (0600, from /dev/urandom,
never shown) and the systemd timers for drift, health and backups. Safe to run again.

  --dry-run    print what would be done; change nothing
  --root DIR   install the file layout under DIR instead of / (for CI and image builds);
               system steps (apt, useradd, chown, venv and npm installs, downloads,
               systemctl) are skipped
  --user NAME  service user (default: ${SERVICE_USER_DEFAULT}); the systemd units run as it
  -h, --help   this text
USAGE
}

die() { echo "setup-vps: error: $*" >&2; exit 1; }
say() { echo "setup-vps: $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1; shift ;;
    --root) [[ $# -ge 2 ]] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --user) [[ $# -ge 2 ]] || die "--user needs a name"; SERVICE_USER="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

if [[ -n "${ROOT}" ]]; then
  [[ "${ROOT}" == /* ]] || die "--root must be an absolute path (got ${ROOT})"
  ROOT="${ROOT%/}"
fi
[[ "${SERVICE_USER}" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user ${SERVICE_USER} is not a valid user name"

# System steps only make sense on the real machine, as root.
SYSTEM=1
[[ -n "${ROOT}" ]] && SYSTEM=0
if [[ "${SYSTEM}" -eq 1 && "${DRY_RUN}" -eq 0 && "${EUID}" -ne 0 ]]; then
  die "run as root (sudo), or use --dry-run / --root DIR"
fi

readonly ETC_DIR="/etc/clawdbot"
readonly DATA_DIR="/var/lib/clawdbot"
readonly STATE_DIR="${DATA_DIR}/state"
readonly OPT_DIR="/opt/clawdbot"
readonly APP_DIR="${OPT_DIR}/app"
readonly VENV_DIR="${OPT_DIR}/venv"
readonly UNIT_DIR="/etc/systemd/system"

# Run a command, or print it under --dry-run.
run() {
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would run: $*"
  else
    "$@"
  fi
}

# System-only command: skipped (and said so) under --root.
sys_run() {
  if [[ "${SYSTEM}" -eq 0 ]]; then
    echo "skipped (target root): $*"
  else
    run "$@"
  fi
}

ensure_dir() {  # ensure_dir PATH MODE [OWNER]
  local path="${ROOT}$1" mode="$2" owner="${3:-}"
  if [[ ! -d "${path}" ]]; then
    run install -d -m "${mode}" "${path}"
  else
    run chmod "${mode}" "${path}"
  fi
  if [[ -n "${owner}" ]]; then
    sys_run chown "${owner}" "${path}"
  fi
}

# A new random passphrase in a 0600 file. Nothing is echoed: the value goes from /dev/urandom
# through base64 into a temp file created under umask 077, then renamed into place.
ensure_secret_file() {  # ensure_secret_file PATH OWNER
  local path="${ROOT}$1" owner="$2"
  if [[ -s "${path}" ]]; then
    run chmod 0600 "${path}"
    say "kept existing ${path}"
  elif [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would create ${path} (0600, 32 random bytes from /dev/urandom, base64)"
  else
    local tmp
    tmp="$(umask 077 && mktemp "${path}.XXXXXX")"
    CLEANUP+=("${tmp}")
    # Never leave a half-written passphrase behind: the temp file goes if any step fails.
    { head -c 32 /dev/urandom | base64 -w0 > "${tmp}" && chmod 0600 "${tmp}" && mv -f "${tmp}" "${path}"; } \
      || { rm -f "${tmp}"; die "could not write ${path}"; }
    say "created ${path} (0600)"
  fi
  sys_run chown "${owner}" "${path}"
}

# A file copied from the repo; replaced only when its content differs.
ensure_file() {  # ensure_file SOURCE TARGET MODE
  local source="$1" target="${ROOT}$2" mode="$3"
  if [[ -f "${target}" ]] && cmp -s "${source}" "${target}"; then
    run chmod "${mode}" "${target}"
    return 0
  fi
  run install -m "${mode}" "${source}" "${target}"
}

# Written once, then left to the operator (it holds their settings).
ensure_template() {  # ensure_template TARGET MODE <<CONTENT
  local target="${ROOT}$1" mode="$2" content
  content="$(cat)"
  if [[ -e "${target}" ]]; then
    say "kept existing ${target}"
  elif [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would create ${target} (${mode})"
  else
    (umask 077 && printf '%s\n' "${content}" > "${target}")
    chmod "${mode}" "${target}"
  fi
}

step_packages() {
  say "packages"
  sys_run apt-get update
  sys_run apt-get install -y --no-install-recommends python3 python3-venv ca-certificates curl git nodejs npm
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
  local owner="${SERVICE_USER}:${SERVICE_USER}"
  # Parents are only created when missing; their modes are the system's business.
  run mkdir -p "${ROOT}/etc" "${ROOT}/var/lib" "${ROOT}/opt" "${ROOT}${UNIT_DIR}"
  ensure_dir "${ETC_DIR}" 0750 "root:${SERVICE_USER}"
  ensure_dir "${DATA_DIR}" 0700 "${owner}"
  ensure_dir "${STATE_DIR}" 0700 "${owner}"
  ensure_dir "${DATA_DIR}/work" 0700 "${owner}"
  ensure_dir "${DATA_DIR}/pulumi-home" 0700 "${owner}"
  ensure_dir "${OPT_DIR}" 0755
}

step_secrets() {
  say "passphrases (never displayed)"
  ensure_secret_file "${ETC_DIR}/passphrase" "${SERVICE_USER}:${SERVICE_USER}"
  ensure_secret_file "${ETC_DIR}/backup-passphrase" "${SERVICE_USER}:${SERVICE_USER}"
  ensure_template "${ETC_DIR}/clawdbot.env" 0644 <<ENV
# Clawdbot edge settings (read by the systemd units). No secret values here: only file paths.
PULUMI_HOME=${DATA_DIR}/pulumi-home
PULUMI_BACKEND_URL=file://${STATE_DIR}
PULUMI_CONFIG_PASSPHRASE_FILE=${ETC_DIR}/passphrase
CLAWDBOT_PROJECT_DIR=${APP_DIR}
CLAWDBOT_STATE_DIR=${STATE_DIR}
CLAWDBOT_PASSPHRASE_FILE=${ETC_DIR}/passphrase
CLAWDBOT_BACKUP_PASSPHRASE_FILE=${ETC_DIR}/backup-passphrase
CLAWDBOT_WORK_ROOT=${DATA_DIR}/work
CLAWDBOT_AUDIT_LOG=${DATA_DIR}/audit.jsonl
CLAWDBOT_BACKUP_MARKER=${DATA_DIR}/last-backup.json
CLAWDBOT_R2_ENDPOINT=https://ACCOUNT_ID.r2.cloudflarestorage.com
CLAWDBOT_R2_BUCKET=clawdbot-backups
ENV
  ensure_template "${ETC_DIR}/r2.env" 0600 <<ENV
# R2 API token (Object Read & Write on the backup bucket only). Read by systemd as root.
AWS_ACCESS_KEY_ID=
AWS_SECRET_ACCESS_KEY=
ENV
}

# The files of this checkout that git tracks, NUL-separated, without the stack files
# (Pulumi.<stack>.yaml are the operator's data: the repo's examples never overwrite them) and
# without tracked files deleted from the work tree.
tracked_files() {
  local file
  # safe.directory: run as root (sudo) on a checkout owned by the operator, git would refuse.
  git -c safe.directory="${REPO_DIR}" -C "${REPO_DIR}" ls-files -z -- . ':(exclude,glob)**/Pulumi.*.yaml' |
    while IFS= read -r -d '' file; do
      if [[ -e "${REPO_DIR}/${file}" || -L "${REPO_DIR}/${file}" ]]; then
        printf '%s\0' "${file}"
      fi
    done
}

copy_app() {
  local target="${ROOT}${APP_DIR}" list count
  git -c safe.directory="${REPO_DIR}" -C "${REPO_DIR}" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || die "${REPO_DIR} is not a git checkout: the application is copied from git-tracked files only" \
      "(clone the repository and run this script from the clone)"
  ensure_tmp_dir
  list="${TMP_DIR}/app-files"
  tracked_files > "${list}"
  count="$(tr -cd '\0' < "${list}" | wc -c)"
  [[ "${count}" -gt 0 ]] || die "git lists no tracked files in ${REPO_DIR}"
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would copy ${count} git-tracked files of ${REPO_DIR} to ${target} (never Pulumi.*.yaml or untracked files)"
    return 0
  fi
  mkdir -p "${target}"
  tar -C "${REPO_DIR}" --null --no-recursion -T "${list}" -cf - | tar -C "${target}" -xf -
  say "copied ${count} git-tracked files to ${target}"
}

step_app() {
  say "application and Python venv"
  copy_app
  if [[ "${SYSTEM}" -eq 0 ]]; then
    echo "skipped (target root): venv ${VENV_DIR}, pip install, npm ci, chown ${APP_DIR}"
    return 0
  fi
  if [[ ! -x "${VENV_DIR}/bin/python" ]]; then
    run python3 -m venv "${VENV_DIR}"
  fi
  run "${VENV_DIR}/bin/pip" install --quiet --require-virtualenv -r "${APP_DIR}/requirements.txt"
  if [[ -f "${REPO_DIR}/worker_src/package-lock.json" ]]; then
    run npm ci --prefix "${APP_DIR}/worker_src" --no-audit --no-fund
  fi
  run chown -R "root:${SERVICE_USER}" "${APP_DIR}"
}

pulumi_arch() {
  case "$(uname -m)" in
    x86_64|amd64) echo "x64" ;;
    aarch64|arm64) echo "arm64" ;;
    *) die "no Pulumi CLI build for $(uname -m)" ;;
  esac
}

step_pulumi() {
  local archive want installed
  archive="pulumi-v${PULUMI_VERSION}-linux-$(pulumi_arch).tar.gz"
  say "Pulumi CLI v${PULUMI_VERSION} (${archive})"
  want="$(awk -v name="${archive}" '$2 == name && $1 ~ /^[0-9a-f]{64}$/ { print $1 }' "${PIN_FILE}")"
  installed="$("${ROOT}${OPT_DIR}/pulumi/pulumi" version 2>/dev/null || true)"
  if [[ "${installed}" == "v${PULUMI_VERSION}" ]]; then
    say "Pulumi CLI v${PULUMI_VERSION} already installed"
    return 0
  fi
  if [[ "${SYSTEM}" -eq 0 ]]; then
    echo "skipped (target root): download ${archive}, verify sha256, unpack to ${OPT_DIR}/pulumi"
    return 0
  fi
  if [[ -z "${want}" ]]; then
    if [[ "${DRY_RUN}" -eq 1 ]]; then
      echo "would refuse: no pinned sha256 for ${archive} in ${PIN_FILE}"
      return 0
    fi
    die "no pinned sha256 for ${archive} in ${PIN_FILE}: add the line from the release's" \
      "pulumi-${PULUMI_VERSION}-checksums.txt (cross-checked on two sources) and run again"
  fi
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would download https://get.pulumi.com/releases/sdk/${archive}, check sha256 ${want}," \
      "unpack to ${OPT_DIR}/pulumi and link /usr/local/bin/pulumi"
    return 0
  fi
  ensure_tmp_dir
  local tmp="${TMP_DIR}/pulumi"
  mkdir -p "${tmp}"
  curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \
    -o "${tmp}/${archive}" "https://get.pulumi.com/releases/sdk/${archive}"
  (cd "${tmp}" && printf '%s  %s\n' "${want}" "${archive}" | sha256sum --check --status) \
    || die "sha256 of ${archive} does not match the pin in ${PIN_FILE}; refusing to install"
  tar -xzf "${tmp}/${archive}" -C "${tmp}"
  rm -rf "${OPT_DIR}/pulumi.new"
  mv "${tmp}/pulumi" "${OPT_DIR}/pulumi.new"
  rm -rf "${OPT_DIR}/pulumi"
  mv "${OPT_DIR}/pulumi.new" "${OPT_DIR}/pulumi"
  ln -sfn "${OPT_DIR}/pulumi/pulumi" /usr/local/bin/pulumi
  say "installed $("${OPT_DIR}/pulumi/pulumi" version)"
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
  local unit rendered
  ensure_tmp_dir
  mkdir -p "${TMP_DIR}/units"
  for unit in "${SCRIPT_DIR}"/systemd/*.service "${SCRIPT_DIR}"/systemd/*.timer; do
    rendered="${TMP_DIR}/units/$(basename "${unit}")"
    render_unit "${unit}" "${rendered}"
    ensure_file "${rendered}" "${UNIT_DIR}/$(basename "${unit}")" 0644
  done
  sys_run systemctl daemon-reload
  for unit in "${SCRIPT_DIR}"/systemd/*.timer; do
    sys_run systemctl enable --now "$(basename "${unit}")"
  done
}

main() {
  [[ "${DRY_RUN}" -eq 1 ]] && say "dry run: nothing will be changed"
  [[ -n "${ROOT}" ]] && say "target root: ${ROOT}"
  step_packages
  step_user
  step_dirs
  step_secrets
  step_app
  step_pulumi
  step_units
  say "done. Next: fill ${ETC_DIR}/r2.env, copy ${ETC_DIR}/backup-passphrase off this machine," \
    "then run: sudo -u ${SERVICE_USER} ${VENV_DIR}/bin/python -m orchestrator doctor"
}

main
