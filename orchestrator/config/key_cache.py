"""Derived stack keys kept between commands in the kernel's user keyring: memory, never disk.

Opening a stack's `secure:` values costs one PBKDF2 derivation (1M rounds, ~0.25 s) per stack
salt, and real stacks each have their own salt: a 200-tenant `local up` or fleet run pays ~50 s
of CPU before doing anything. The derived key is cached as a Linux `user` key (keyrings(7)) in
the user keyring (`@u`), so the next command of the same user finds it:

- never on disk: key payloads live in kernel memory (a `user` key's payload is not swappable
  page cache or a file); nothing is written under HOME, /tmp or the project;
- bound to the passphrase: the payload is `key || HMAC-SHA256(key, purpose || passphrase)`; an
  entry is used only when that tag matches the passphrase given now, so the cache never makes a
  wrong passphrase open a stack (the crypter's own `encryptionsalt` check runs on top);
- readable only by this uid (possessor + user permissions, no group/other), which can read the
  passphrase file anyway; expires `CLAWDBOT_KEY_CACHE` seconds after derivation (default 900),
  `CLAWDBOT_KEY_CACHE=off` turns it off (nothing read or written);
- best effort: where keyrings are unavailable (not Linux, a seccomp filter refusing the
  syscalls, as Docker's default profile does) every key is derived, as before.

The description names only the (public) salt: `clawdbot:pbkdf2:<iterations>:<salt b64>`. A non-root
user's keyring quota (kernel.keys.maxkeys 200, maxbytes 20000 by default) holds about 200 such
keys; past it the kernel refuses new ones (EDQUOT) and the rest are derived each time (raise the
quota with `sysctl kernel.keys.maxkeys=2000 kernel.keys.maxbytes=200000` for bigger fleets).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import platform
import sys
from collections.abc import Mapping

ENV = "CLAWDBOT_KEY_CACHE"
DEFAULT_SECONDS = 900
MAX_SECONDS = 7 * 24 * 3600
PURPOSE = b"clawdbot-key-cache-v1\0"
TAG_BYTES = 16
"""HMAC-SHA256 truncated to 128 bits: small payloads keep a non-root user's keyring quota for keys."""

# Syscall numbers: linux arch/x86/entry/syscalls/syscall_64.tbl (add_key 248, keyctl 250) and
# include/uapi/asm-generic/unistd.h for arm64 (__NR_add_key 217, __NR_keyctl 219).
_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219), "arm64": (217, 219)}
# include/uapi/linux/keyctl.h
KEY_SPEC_USER_KEYRING = -4
KEYCTL_SETPERM = 5
KEYCTL_SEARCH = 10
KEYCTL_READ = 11
KEYCTL_SET_TIMEOUT = 15
KEYCTL_INVALIDATE = 21
# Possessor: view, read, write, search, link, setattr; user: view, read, search. Group/other: none.
KEY_PERM = 0x3F000000 | 0x000B0000


def cache_seconds(environ: Mapping[str, str] | None = None) -> int:
    """How long a derived key stays cached; 0 when the cache is off. A bad value means off."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if not raw:
        return DEFAULT_SECONDS
    if raw in ("off", "0", "no", "false"):
        return 0
    if not raw.isdigit():
        return 0
    return min(int(raw), MAX_SECONDS)


def description(salt: bytes, iterations: int) -> bytes:
    return f"clawdbot:pbkdf2:{iterations}:{base64.b64encode(salt).decode()}".encode()


def _tag(key: bytes, passphrase: str) -> bytes:
    return hmac.new(key, PURPOSE + passphrase.encode("utf-8"), hashlib.sha256).digest()[:TAG_BYTES]


class _Keyring:
    """The three keyring calls, straight through syscall(2); unavailable → every call answers None."""

    def __init__(self) -> None:
        numbers = _SYSCALLS.get(platform.machine()) if sys.platform == "linux" else None
        self._numbers = numbers
        self._syscall = None
        if numbers is not None:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            self._syscall = libc.syscall
            self._syscall.restype = ctypes.c_long

    def _call(self, *args: object) -> int | None:
        if self._syscall is None:
            return None
        result = int(self._syscall(*args))
        return None if result < 0 else result

    def search(self, desc: bytes) -> int | None:
        if self._numbers is None:
            return None
        return self._call(
            ctypes.c_long(self._numbers[1]),
            ctypes.c_int(KEYCTL_SEARCH),
            ctypes.c_int(KEY_SPEC_USER_KEYRING),
            ctypes.c_char_p(b"user"),
            ctypes.c_char_p(desc),
            ctypes.c_int(0),
        )

    def read(self, serial: int, size: int) -> bytes | None:
        if self._numbers is None:
            return None
        buffer = ctypes.create_string_buffer(size)
        length = self._call(
            ctypes.c_long(self._numbers[1]),
            ctypes.c_int(KEYCTL_READ),
            ctypes.c_int(serial),
            buffer,
            ctypes.c_size_t(size),
        )
        if length is None or length > size:
            return None
        return buffer.raw[:length]

    def add(self, desc: bytes, payload: bytes, seconds: int) -> int | None:
        if self._numbers is None:
            return None
        serial = self._call(
            ctypes.c_long(self._numbers[0]),
            ctypes.c_char_p(b"user"),
            ctypes.c_char_p(desc),
            ctypes.c_char_p(payload),
            ctypes.c_size_t(len(payload)),
            ctypes.c_int(KEY_SPEC_USER_KEYRING),
        )
        if serial is None:
            return None
        ctl = ctypes.c_long(self._numbers[1])
        # The expiry first: a key must not outlive its timeout if the permissions call fails.
        if self._call(ctl, ctypes.c_int(KEYCTL_SET_TIMEOUT), ctypes.c_int(serial), ctypes.c_uint(seconds)) is None:
            self.invalidate(serial)
            return None
        self._call(ctl, ctypes.c_int(KEYCTL_SETPERM), ctypes.c_int(serial), ctypes.c_uint32(KEY_PERM))
        return serial

    def invalidate(self, serial: int) -> None:
        if self._numbers is not None:
            self._call(ctypes.c_long(self._numbers[1]), ctypes.c_int(KEYCTL_INVALIDATE), ctypes.c_int(serial))


_KEYRING = _Keyring()


def lookup(passphrase: str, salt: bytes, iterations: int, key_bytes: int) -> bytes | None:
    """The cached key for (passphrase, salt), or None (off, absent, expired, another passphrase, damaged)."""
    if not cache_seconds():
        return None
    serial = _KEYRING.search(description(salt, iterations))
    if serial is None:
        return None
    payload = _KEYRING.read(serial, key_bytes + TAG_BYTES)
    if payload is None or len(payload) != key_bytes + TAG_BYTES:
        return None
    key, tag = payload[:key_bytes], payload[key_bytes:]
    if not hmac.compare_digest(tag, _tag(key, passphrase)):
        return None
    return key


def store(passphrase: str, salt: bytes, iterations: int, key: bytes) -> bool:
    """Cache a freshly derived key; True when the keyring took it."""
    seconds = cache_seconds()
    if not seconds:
        return False
    return _KEYRING.add(description(salt, iterations), key + _tag(key, passphrase), seconds) is not None


def forget(salt: bytes, iterations: int) -> None:
    """Drop the cached key for this salt (tests; a key that failed the stack's own check)."""
    serial = _KEYRING.search(description(salt, iterations))
    if serial is not None:
        _KEYRING.invalidate(serial)
