"""The derived-key cache (config/key_cache.py): kernel keyring, bound to the passphrase, never on disk.

Upstream facts relied on (Linux man-pages keyrings(7), add_key(2), keyctl(2); include/uapi/linux/keyctl.h):
- a `user` key in the user keyring (KEY_SPEC_USER_KEYRING = -4) outlives the process that added it
  and is found by KEYCTL_SEARCH (10) from another process of the same uid, read by KEYCTL_READ (11);
- KEYCTL_SET_TIMEOUT (15) makes it expire; /proc/keys shows the remaining time and the permission
  mask (possessor/user/group/other bytes, high to low) of each key the caller can view.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config import key_cache
from orchestrator.config import secrets_provider as pp
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import PassphraseError

ITER = pp.PBKDF2_ITERATIONS
KEY = bytes(range(32))


def _keyring_works() -> bool:
    salt = os.urandom(8)
    stored = key_cache.store("probe", salt, ITER, KEY)
    key_cache.forget(salt, ITER)
    return stored


needs_keyring = pytest.mark.skipif(
    not _keyring_works(), reason="the kernel keyring is unavailable here (not Linux, or a seccomp filter refuses it)"
)


@pytest.fixture
def salt(monkeypatch: pytest.MonkeyPatch) -> Iterator[bytes]:
    """A fresh salt with the cache on, its keyring entry dropped afterwards; no in-process key cache."""
    monkeypatch.delenv(key_cache.ENV, raising=False)
    value = os.urandom(8)
    pp._derive.cache_clear()
    pp._remember.cache_clear()
    yield value
    key_cache.forget(value, ITER)
    pp._derive.cache_clear()
    pp._remember.cache_clear()


def _salt_line(passphrase: str, salt: bytes) -> str:
    """An `encryptionsalt` for `salt`, made without touching the cache."""
    import base64
    import hashlib

    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, ITER, pp.KEY_BYTES)
    return f"v1:{base64.b64encode(salt).decode()}:{pp._encrypt(key, pp.CHECK_PLAINTEXT)}"


def _proc_keys_line(salt: bytes) -> str | None:
    wanted = key_cache.description(salt, ITER).decode()
    for line in Path("/proc/keys").read_text().splitlines():
        if f" {wanted}:" in line:
            return line
    return None


@needs_keyring
def test_a_key_cached_by_one_process_is_found_by_the_next(salt: bytes) -> None:
    crypter = pp.PassphraseCrypter("right", _salt_line("right", salt))
    value = crypter.encrypt("the-plaintext")
    code = (
        "import sys, base64\n"
        "from orchestrator.config import key_cache, secrets_provider as pp\n"
        f"salt = base64.b64decode({__import__('base64').b64encode(salt).decode()!r})\n"
        "key, cached = pp._derive('right', salt)\n"
        "print(cached, key.hex())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "True"
    assert out[1] == crypter._key.hex()
    assert crypter.decrypt(value) == "the-plaintext"


@needs_keyring
def test_the_cache_never_opens_a_stack_with_another_passphrase(salt: bytes) -> None:
    line = _salt_line("right", salt)
    pp.PassphraseCrypter("right", line)  # caches the right key
    assert key_cache.lookup("right", salt, ITER, pp.KEY_BYTES) is not None
    pp._derive.cache_clear()
    for wrong in ("wrong", "right ", "Right", ""):
        assert key_cache.lookup(wrong, salt, ITER, pp.KEY_BYTES) is None
        with pytest.raises(PassphraseError):
            pp.PassphraseCrypter(wrong, line)
    # A refused passphrase leaves the right key cached (nothing that failed the check is stored).
    assert pp._derive("right", salt)[1] is True


@needs_keyring
@pytest.mark.parametrize(
    "payload",
    [b"", b"short", KEY, KEY + b"\0" * key_cache.TAG_BYTES, KEY + b"\0" * (key_cache.TAG_BYTES + 1)],
    ids=["empty", "short", "key-only", "bad-tag", "too-long"],
)
def test_a_damaged_entry_is_ignored_and_replaced(salt: bytes, payload: bytes) -> None:
    assert key_cache._KEYRING.add(key_cache.description(salt, ITER), payload or b"\0", 60) is not None
    assert key_cache.lookup("right", salt, ITER, pp.KEY_BYTES) is None
    crypter = pp.PassphraseCrypter("right", _salt_line("right", salt))
    assert crypter.decrypt(crypter.encrypt("x")) == "x"
    assert key_cache.lookup("right", salt, ITER, pp.KEY_BYTES) == crypter._key


@needs_keyring
def test_entries_expire_and_only_this_uid_reads_them(salt: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key_cache.ENV, "120")
    assert key_cache.store("right", salt, ITER, KEY)
    line = _proc_keys_line(salt)
    assert line is not None, "the cached key is not listed in /proc/keys"
    fields = line.split()
    expiry, perm, uid = fields[3], int(fields[4], 16), fields[5]
    # proc_keys_show prints the time left as <n>s below a minute, <n>m below an hour.
    assert expiry in ("1m", "2m") or (expiry.endswith("s") and expiry[:-1].isdigit()), expiry
    assert perm & 0xFFFF == 0, f"group/other may use the key: {perm:08x}"
    assert uid == str(os.getuid())


@needs_keyring
def test_off_reads_and_writes_nothing(salt: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert key_cache.store("right", salt, ITER, KEY)
    monkeypatch.setenv(key_cache.ENV, "off")
    assert key_cache.lookup("right", salt, ITER, pp.KEY_BYTES) is None
    other = os.urandom(8)
    assert not key_cache.store("right", other, ITER, KEY)
    assert _proc_keys_line(other) is None


def test_nothing_is_written_to_disk(tmp_path: Path) -> None:
    """A process that derives and caches keys leaves HOME, TMPDIR and its working directory empty."""
    code = (
        "from orchestrator.config import secrets_provider as pp\n"
        "line = pp.new_encryption_salt('pw')\n"
        "pp._derive.cache_clear()\n"
        "pp.PassphraseCrypter('pw', line)\n"
    )
    for name in ("home", "tmp", "cwd"):
        (tmp_path / name).mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "tmp"),
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "cwd", env=env, check=True)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_without_a_keyring_every_key_is_derived(salt: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = key_cache._Keyring.__new__(key_cache._Keyring)
    absent._numbers = None
    absent._syscall = None
    monkeypatch.setattr(key_cache, "_KEYRING", absent)
    assert not key_cache.store("right", salt, ITER, KEY)
    crypter = pp.PassphraseCrypter("right", _salt_line("right", salt))
    assert crypter.decrypt(crypter.encrypt("x")) == "x"
    assert pp._derive("right", salt)[1] is False


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, key_cache.DEFAULT_SECONDS),
        ("", key_cache.DEFAULT_SECONDS),
        ("off", 0),
        ("OFF", 0),
        ("0", 0),
        ("false", 0),
        ("60", 60),
        (" 60 ", 60),
        ("99999999999", key_cache.MAX_SECONDS),
        ("15m", 0),
        ("-5", 0),
        ("1e3", 0),
    ],
)
def test_cache_seconds_from_the_environment(value: str | None, seconds: int) -> None:
    env = {} if value is None else {key_cache.ENV: value}
    assert key_cache.cache_seconds(env) == seconds
