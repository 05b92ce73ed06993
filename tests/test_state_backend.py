"""The Pulumi state backend URL: file:// on one VPS, s3:// on R2 for several nodes, checked before any CLI runs.

Upstream facts this relies on (pulumi/pulumi, snapshot pkg/v3.259.0-14-g1b5949891b):
- `pkg/backend/diy/backend.go` `massageBlobPath` → `translateLegacyS3Params` for every `s3://` URL:
  `disableSSL` becomes `disable_https`, a scheme-less `endpoint` gets one, and with an `endpoint`
  set `request_checksum_calculation=when_required` is added; "The other v1-era parameters
  (s3ForcePathStyle, awssdk) are still understood by gocloud.dev and need no translation". So the
  documented URL `s3://bucket/folder?endpoint=https://<acct>.r2.cloudflarestorage.com&region=auto
  &s3ForcePathStyle=true` reaches the S3 driver as written (plus the checksum default).
- Same file, `newDIYBackend`: a path after the bucket becomes a `blob.PrefixedBucket`, so one bucket
  can hold several fleets' states in folders.
- Same file: `meta.yaml` version 0 (legacy layout) is an *error* unless
  PULUMI_DIY_BACKEND_IGNORE_DEPRECATION_ERROR is set (CHANGELOG 3.257.0, #24216); version 1 is the
  project layout `.pulumi/stacks/<project>/<stack>.json` (`store.go` StacksDir) with locks under
  `.pulumi/locks/organization/<project>/<stack>/<lockID>.json` (`lock.go` stackLockDir/lockPath).
- `lock.go` `Lock`: checkForLock (a bucket *list*), write `<lockID>.json`, checkForLock again and
  back out. No conditional write, no expiry: mutual exclusion rests on list-after-write consistency,
  so it is not atomic; the Temporal workflow id per stack is what makes two nodes safe.
- #24292 "update gocloud.dev to latest" fixes R2 `InvalidDigest` (#24219); `git tag --contains
  69b751ec60` starts at v3.258.0 and `git merge-base --is-ancestor 69b751ec60 v3.257.0` is false.
- R2 endpoints: developers.cloudflare.com/r2/api/s3/tokens/ (`https://<ACCOUNT_ID>.r2.cloudflarestorage.com`,
  jurisdictions `.eu.` and `.fedramp.`); the `.us.` jurisdiction: Cloudflare changelog 2026-08-17.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from orchestrator.config.settings import Settings
from orchestrator.config.state_backend import MIN_CLI_FOR_R2, parse_state_backend
from orchestrator.core.errors import ConfigError

ACCOUNT = "0123456789abcdef0123456789abcdef"
R2 = f"https://{ACCOUNT}.r2.cloudflarestorage.com"
GOOD = f"s3://clawdbot-state/fleet?endpoint={R2}&region=auto&s3ForcePathStyle=true"


def test_the_documented_r2_url_is_a_shared_r2_backend() -> None:
    backend = parse_state_backend(GOOD)
    assert (backend.kind, backend.path, backend.prefix, backend.endpoint) == ("s3", "clawdbot-state", "fleet", R2)
    assert backend.shared and backend.is_r2
    assert backend.url == GOOD  # passed to the CLI as written
    assert "R2 backend s3://clawdbot-state/fleet" in backend.describe()


@pytest.mark.parametrize(
    "url",
    [
        f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true",  # bucket root
        f"s3://clawdbot-state/eu/fleet?endpoint=https://{ACCOUNT}.eu.r2.cloudflarestorage.com&region=auto&s3ForcePathStyle=1",
        f"s3://st8?endpoint=https://{ACCOUNT}.fedramp.r2.cloudflarestorage.com/&region=auto&s3ForcePathStyle=true",
        f"s3://st8?endpoint=https://{ACCOUNT}.us.r2.cloudflarestorage.com&region=auto&s3ForcePathStyle=True",
        "s3://local-test?endpoint=http://127.0.0.1:9000&s3ForcePathStyle=true&region=us-east-1",  # loopback stand-in
    ],
)
def test_r2_jurisdictions_folders_and_a_loopback_stand_in_pass(url: str) -> None:
    assert parse_state_backend(url).kind == "s3"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("gs://bucket", "scheme 'gs' is not supported"),
        ("postgres://u@h/db", "scheme 'postgres' is not supported"),
        ("clawdbot-state", "scheme '(none)'"),
        ("file://relative/dir", "absolute directory"),
        ("s3://clawdbot-state/fleet", "endpoint= is required"),
        (f"s3://clawdbot-state?endpoint={R2}&s3ForcePathStyle=true", "region=auto is required"),
        (f"s3://clawdbot-state?endpoint={R2}&region=us-east-1&s3ForcePathStyle=true", "region=auto is required"),
        (f"s3://clawdbot-state?endpoint={R2}&region=auto", "s3ForcePathStyle=true is required"),
        (f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=false", "s3ForcePathStyle=true is required"),
        (f"s3://Clawdbot?endpoint={R2}&region=auto&s3ForcePathStyle=true", "not a valid R2 bucket name"),
        (f"s3://ab?endpoint={R2}&region=auto&s3ForcePathStyle=true", "not a valid R2 bucket name"),
        (f"s3://bucket_x?endpoint={R2}&region=auto&s3ForcePathStyle=true", "not a valid R2 bucket name"),
        (f"s3://clawdbot-state//x?endpoint={R2}&region=auto&s3ForcePathStyle=true", "plain names"),
        (f"s3://clawdbot-state/a/../b?endpoint={R2}&region=auto&s3ForcePathStyle=true", "plain names"),
        ("s3://clawdbot-state?endpoint=https://abc.r2.cloudflarestorage.com&region=auto", "not an R2 endpoint"),
        ("s3://clawdbot-state?endpoint=http://s3.example.com&region=auto", "plain http"),
        ("s3://clawdbot-state?endpoint=ftp://s3.example.com", "endpoint must be https"),
        (f"s3://clawdbot-state?endpoint={R2}/bucket&region=auto&s3ForcePathStyle=true", "without a path"),
        (f"s3://clawdbot-state?endpoint={R2}&endpoint={R2}&region=auto", "given 2 times"),
        (f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true&disableSSL=true", "unencrypted"),
        (f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true#x", "fragment"),
    ],
)
def test_a_bad_backend_url_says_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_state_backend(url)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"s3://AKIAEXAMPLE:s3cr3tvalue@clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true",
        f"s3://clawdbot-state?endpoint=https://AKIAEXAMPLE:s3cr3tvalue@{ACCOUNT}.r2.cloudflarestorage.com&region=auto",
        f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true&aws_secret_access_key=s3cr3tvalue",
        f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true&accessKey=s3cr3tvalue",
        f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true&session_token=s3cr3tvalue",
    ],
)
def test_credentials_in_the_url_are_refused_and_never_echoed(url: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_state_backend(url)
    message = str(info.value)
    assert "AWS_ACCESS_KEY_ID" in message and "s3cr3tvalue" not in message


def test_settings_default_to_the_file_backend_in_the_state_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"CLAWDBOT_STATE_DIR": str(tmp_path / "state")})
    assert settings.backend_url == f"file://{(tmp_path / 'state').resolve()}"
    assert settings.backend.kind == "file" and not settings.backend.shared


def test_settings_take_the_shared_backend_from_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "clawdbot.env"
    env_file.write_text(f"CLAWDBOT_STATE_BACKEND={GOOD}\n", encoding="utf-8")
    settings = Settings.from_env({"CLAWDBOT_ENV_FILE": str(env_file)})
    assert settings.backend_url == GOOD and settings.backend.shared


def test_a_bad_backend_setting_is_one_error_naming_the_variable(tmp_path: Path) -> None:
    bad = f"s3://clawdbot-state?endpoint={R2}&region=auto&s3ForcePathStyle=true&secret=hunter2hunter2"
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"CLAWDBOT_STATE_BACKEND": bad})
    message = str(info.value)
    assert message.startswith("CLAWDBOT_STATE_BACKEND (setting state_backend): query parameter secret looks like")
    assert "hunter2" not in message and "\n" not in message


def test_every_bad_setting_names_its_variable_not_only_the_backend() -> None:
    with pytest.raises(ConfigError, match=r"^CLAWDBOT_API_BUDGET_KEY \(setting api_budget_key\): "):
        Settings.from_env({"CLAWDBOT_API_BUDGET_KEY": "per-user"})


def test_the_pinned_cli_is_new_enough_for_r2() -> None:
    # doctor holds the CLI to the pinned SDK's version (they are released together), so the pin must
    # be at or past the first release with the R2 InvalidDigest fix.
    pinned = tuple(int(part) for part in metadata.version("pulumi").split(".")[:3])
    assert pinned >= MIN_CLI_FOR_R2
