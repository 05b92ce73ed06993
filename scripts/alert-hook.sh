#!/usr/bin/env bash
# The alert hook behind clawdbot-alert@.service: a clawdbot-* unit failed (OnFailure=), say so.
# In cluster mode the same hook reports a failed Temporal schedule run (orchestrator/cluster/
# maintenance.py): one alert rule for both, whoever noticed the failure.
#
#   alert-hook.sh UNIT [SEE]
#
# UNIT names what failed (a systemd unit, or a schedule id such as clawdbot:<project>:<queue>:drift);
# SEE is where to read why (default: `journalctl -u UNIT`).
# Always writes one line to stderr (the journal: `journalctl -u clawdbot-alert@UNIT`). Optional
# settings, from /etc/clawdbot/alert.env (root-owned 0600; systemd reads it for the unit):
#   ALERT_WEBHOOK_URL  https:// URL (or http:// on loopback) that gets a JSON POST:
#                      {"text": "...", "unit": UNIT, "host": HOST, "time": ISO-8601 UTC}
#                      (`text` is what Slack and Mattermost incoming webhooks display)
#   ALERT_COMMAND      absolute path of a program run as `ALERT_COMMAND UNIT` (pager, mail, ...)
# The webhook URL is a credential: it is never printed. Exit 1 when a configured channel fails,
# so the alert unit itself shows up in `systemctl --failed`.
set -euo pipefail

die() { echo "alert-hook: error: $*" >&2; exit 1; }

[[ $# -eq 1 || $# -eq 2 ]] || die "usage: alert-hook.sh UNIT [SEE]"
unit="$1"
# systemd unit names (escaped instance names included) use only these characters.
[[ "${unit}" =~ ^[A-Za-z0-9:_.@\\-]{1,256}$ ]] || die "not a unit name: refusing to alert about it"
see="${2:-journalctl -u ${unit}}"
# A command line to run, in characters that need no escaping in JSON or a shell's echo.
[[ "${see}" =~ ^[A-Za-z0-9:_.@/=\ \\-]{1,512}$ ]] || die "not a command to look with: refusing to alert with it"
host="$(hostname 2>/dev/null || echo unknown)"
[[ "${host}" =~ ^[A-Za-z0-9.-]{1,253}$ ]] || host="unknown"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
text="${unit} failed on ${host} at ${now}; see: ${see}"
# The only character of those above that JSON needs escaped is the backslash (systemd's \x2d).
json() { printf '%s' "${1//\\/\\\\}"; }

echo "alert-hook: ${text}" >&2
status=0

url="${ALERT_WEBHOOK_URL:-}"
if [[ -n "${url}" ]]; then
  if [[ ! "${url}" =~ ^https://[^[:space:]\"\\]+$ && ! "${url}" =~ ^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/[^[:space:]\"\\]*)?$ ]]; then
    echo "alert-hook: ALERT_WEBHOOK_URL must be https:// (or http:// on loopback); not sent" >&2
    status=1
  else
    payload="$(printf '{"text":"%s","unit":"%s","host":"%s","time":"%s"}' "$(json "${text}")" "$(json "${unit}")" "${host}" "${now}")"
    # The URL goes to curl on stdin (-K -), never on its command line or in a message.
    if printf 'url = "%s"\n' "${url}" | curl --config - --fail --silent --max-time 20 \
      --proto '=https,http' -H 'Content-Type: application/json' --data-binary "${payload}" \
      -o /dev/null 2>/dev/null; then
      echo "alert-hook: webhook notified" >&2
    else
      echo "alert-hook: webhook POST failed (curl exit $?); the URL is in ALERT_WEBHOOK_URL" >&2
      status=1
    fi
  fi
fi

command="${ALERT_COMMAND:-}"
if [[ -n "${command}" ]]; then
  if [[ "${command}" != /* || ! -x "${command}" ]]; then
    echo "alert-hook: ALERT_COMMAND ${command} is not an absolute path to an executable; not run" >&2
    status=1
  elif ! "${command}" "${unit}"; then
    echo "alert-hook: ALERT_COMMAND ${command} failed" >&2
    status=1
  fi
fi
exit "${status}"
