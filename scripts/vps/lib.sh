# shellcheck shell=bash
# Helpers of scripts/setup-vps.sh: dry-run/target-root aware file operations, the layout env
# file, and the one way anything is downloaded (pinned SHA-256, checked before use).
#
# Sourcing this file defines functions only. The caller sets DRY_RUN (0|1), SYSTEM (0|1: 0 under
# --root), DOWNLOADS (0|1: 0 when archives are not fetched), ROOT ("" or an absolute path),
# MIRROR ("" or a directory / https URL), TMP_DIR ("" until ensure_tmp_dir) and CLEANUP (an
# array of paths removed on exit).

die() { echo "setup-vps: error: $*" >&2; exit 1; }
say() { echo "setup-vps: $*"; }

# The script's private scratch directory (created on first use, in this shell: never call it in $(...)).
ensure_tmp_dir() {
  if [[ -z "${TMP_DIR}" ]]; then
    TMP_DIR="$(mktemp -d)"
  fi
}

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

# ---------------------------------------------------------------------------------------------
# The layout env file (format: docs in /work/notes/vps-note.md and README "VPS set-up")
#
# One KEY=VALUE per line, `#` comments and blank lines; values are literal (no quotes, escapes,
# `$` or spaces), so systemd's EnvironmentFile= and the CLI read the same thing.

readonly ENV_LINE_RE='^[A-Z_][A-Z0-9_]*=[^[:space:]"'"'"'\\$`#]*$'

# Rewrite TARGET so every managed KEY=VALUE (stdin) holds, keeping the operator's other lines
# (comments, R2 settings) and adding the defaults (DEFAULTS_FILE) that are missing. A line the CLI
# and systemd would read differently is refused with its line number.
merge_env_file() {  # merge_env_file TARGET DEFAULTS_FILE HEADER <<MANAGED
  local target="${ROOT}$1" defaults="$2" header="$3" lines line key number=0 out
  local -A want=() seen=()
  local -a order=()
  while IFS= read -r line; do
    key="${line%%=*}"
    want["${key}"]="${line#*=}"
    order+=("${key}")
  done
  ensure_tmp_dir
  out="${TMP_DIR}/env.new"
  : > "${out}"
  if [[ -f "${target}" ]]; then
    while IFS= read -r line || [[ -n "${line}" ]]; do
      number=$((number + 1))
      if [[ -z "${line}" || "${line}" == \#* ]]; then
        printf '%s\n' "${line}" >> "${out}"
        continue
      fi
      [[ "${line}" =~ ${ENV_LINE_RE} ]] \
        || die "${target}:${number}: not a plain KEY=VALUE line (no quotes, spaces, \$, \\ or #" \
          "in values: systemd and the CLI must read the same value); fix or remove it"
      key="${line%%=*}"
      [[ -z "${seen[${key}]:-}" ]] || die "${target}:${number}: ${key} is set twice; keep one line"
      seen["${key}"]=1
      if [[ -n "${want[${key}]+set}" && "${line#*=}" != "${want[${key}]}" ]]; then
        say "${target}: ${key} reset to ${want[${key}]} (the layout is setup-vps.sh's; the units use these paths)"
        line="${key}=${want[${key}]}"
      fi
      printf '%s\n' "${line}" >> "${out}"
    done < "${target}"
  else
    printf '%s\n' "${header}" >> "${out}"
  fi
  for key in "${order[@]}"; do
    [[ -n "${seen[${key}]:-}" ]] || printf '%s=%s\n' "${key}" "${want[${key}]}" >> "${out}"
    seen["${key}"]=1
  done
  while IFS= read -r line; do
    [[ -z "${line}" || "${line}" == \#* ]] && continue
    key="${line%%=*}"
    [[ -n "${seen[${key}]:-}" ]] || printf '%s\n' "${line}" >> "${out}"
  done < "${defaults}"
  if [[ -f "${target}" ]] && cmp -s "${out}" "${target}"; then
    run chmod 0644 "${target}"
    return 0
  fi
  lines="$(wc -l < "${out}")"
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would write ${target} (0644, ${lines} lines: the layout, your other settings kept)"
    return 0
  fi
  # Renamed into place: a unit starting meanwhile reads the old file or the new one, never half.
  install -m 0644 "${out}" "${target}.new"
  mv -f -- "${target}.new" "${target}"
}

# ---------------------------------------------------------------------------------------------
# Verified downloads
#
# A pin file holds `sha256sum` lines ("<64 hex>  <archive name>") plus comments. Every archive
# this script installs must have exactly one line there; the archive is checked against it
# before it is unpacked or run, whatever its source (upstream, --mirror directory or URL).

pin_for() {  # pin_for PIN_FILE ARCHIVE -> the pinned sha256, or nothing
  awk -v name="$2" '$2 == name && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { print $1 }' "$1"
}

# Why ARCHIVE cannot be installed (empty when its pin is usable).
pin_problem() {  # pin_problem PIN_FILE ARCHIVE
  local count
  count="$(pin_for "$1" "$2" | wc -l)"
  if [[ "${count}" -eq 0 ]]; then
    echo "no pinned sha256 for $2 in $1"
  elif [[ "${count}" -gt 1 ]]; then
    echo "$2 is pinned ${count} times in $1; keep exactly one line"
  fi
}

# Fetch ARCHIVE (from MIRROR when set, else URL) into DEST and check it against its pin.
# On any mismatch the file is deleted and the script stops: nothing unverified is ever used.
fetch_verified() {  # fetch_verified PIN_FILE ARCHIVE URL DEST
  local pins="$1" archive="$2" url="$3" dest="$4" problem want got
  problem="$(pin_problem "${pins}" "${archive}")"
  [[ -z "${problem}" ]] || die "${problem}; refusing to download it unverified (see the file's header)"
  want="$(pin_for "${pins}" "${archive}")"
  rm -f -- "${dest}"
  CLEANUP+=("${dest}")
  if [[ -n "${MIRROR}" && "${MIRROR}" != https://* ]]; then
    [[ -f "${MIRROR}/${archive}" ]] || die "${archive} is not in the mirror directory ${MIRROR}"
    cp -- "${MIRROR}/${archive}" "${dest}"
  else
    [[ -z "${MIRROR}" ]] || url="${MIRROR%/}/${archive}"
    curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 -o "${dest}" "${url}" \
      || die "could not download ${url}"
  fi
  got="$(sha256sum "${dest}" | awk '{ print $1 }')"
  if [[ "${got}" != "${want}" ]]; then
    rm -f -- "${dest}"
    die "sha256 of ${archive} is ${got}, but ${pins} pins ${want}; refusing to install it"
  fi
  say "verified ${archive} (sha256 ${want})"
}

# Unpack a verified archive into a fresh DIR (swapped in whole) and record the archive's sha256
# there, so a re-run with the same pin downloads nothing.
install_archive() {  # install_archive PIN_FILE ARCHIVE URL DIR EXPECTED_FILE TAR_ARGS...
  local pins="$1" archive="$2" url="$3" dir="${ROOT}$4" expected="$5" want marker
  shift 5
  want="$(pin_for "${pins}" "${archive}")"
  marker="${dir}/.archive-sha256"
  if [[ -n "${want}" && -f "${marker}" && "$(cat "${marker}")" == "${want}" ]]; then
    say "${archive} already installed in ${dir}"
    return 0
  fi
  if [[ "${DOWNLOADS}" -eq 0 ]]; then
    echo "skipped (target root, no --mirror): download ${archive}, verify sha256, unpack to ${dir}"
    return 0
  fi
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    echo "would download ${MIRROR:-${url%/*}}/${archive}, check its sha256 against ${pins}, unpack to ${dir}"
    return 0
  fi
  ensure_tmp_dir
  fetch_verified "${pins}" "${archive}" "${url}" "${TMP_DIR}/${archive}"
  rm -rf -- "${dir}.new"
  mkdir -p "${dir}.new"
  CLEANUP+=("${dir}.new")
  tar -C "${dir}.new" --no-same-owner "$@" -xf "${TMP_DIR}/${archive}"
  [[ -x "${dir}.new/${expected}" ]] || die "${archive} has no ${expected}: not the archive this script expects"
  printf '%s\n' "${want}" > "${dir}.new/.archive-sha256"
  rm -rf -- "${dir}.old"
  if [[ -d "${dir}" ]]; then
    mv -- "${dir}" "${dir}.old"
  fi
  mv -- "${dir}.new" "${dir}"
  rm -rf -- "${dir}.old"
  say "installed ${archive} in ${dir}"
}
