"""Pulumi passphrase-provider compatibility (PBKDF2 is slow: crypters are built once per module)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from orchestrator.config import secrets_provider as pp
from orchestrator.core.errors import ConfigError, CryptoError, PassphraseError, PermissionsError

# From pulumi/pulumi's own test data: passphrase "password".
PULUMI_SALT = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="
PASSPHRASE = "correct horse battery staple"
CANARY = "canary-secret-8c1f"


@pytest.fixture(scope="module")
def pulumi_crypter() -> pp.PassphraseCrypter:
    return pp.PassphraseCrypter("password", PULUMI_SALT, source="Pulumi.vector.yaml")


@pytest.fixture(scope="module")
def new_salt() -> str:
    return pp.new_encryption_salt(PASSPHRASE)


@pytest.fixture(scope="module")
def crypter(new_salt: str) -> pp.PassphraseCrypter:
    return pp.PassphraseCrypter(PASSPHRASE, new_salt, source="Pulumi.prod.acme.yaml")


def test_pulumi_vector_unlocks_and_round_trips(pulumi_crypter: pp.PassphraseCrypter) -> None:
    check = PULUMI_SALT.split(":", 2)[2]
    assert pulumi_crypter.decrypt(check) == "pulumi"
    value = pulumi_crypter.encrypt(CANARY)
    assert pulumi_crypter.decrypt(value) == CANARY


def test_value_format_matches_the_cli(crypter: pp.PassphraseCrypter) -> None:
    value = crypter.encrypt("Grüße 🔐")
    version, nonce, ct = value.split(":")
    assert version == "v1"
    assert len(base64.b64decode(nonce, validate=True)) == 12
    assert len(base64.b64decode(ct, validate=True)) == len("Grüße 🔐".encode()) + 16
    # Random nonce, as the CLI: two encryptions of one value differ and both decrypt.
    again = crypter.encrypt("Grüße 🔐")
    assert again != value
    assert crypter.decrypt(again) == crypter.decrypt(value) == "Grüße 🔐"
    assert crypter.decrypt(crypter.encrypt("")) == ""


def test_new_salt_has_the_cli_shape(new_salt: str, crypter: pp.PassphraseCrypter) -> None:
    version, salt, check = new_salt.split(":", 2)
    assert version == "v1" and len(base64.b64decode(salt, validate=True)) == 8
    assert crypter.decrypt(check) == "pulumi"
    assert crypter.encryption_salt == new_salt


def test_wrong_passphrase_names_the_stack_file() -> None:
    with pytest.raises(PassphraseError, match=r"^Pulumi\.prod\.acme\.yaml: incorrect passphrase") as info:
        pp.PassphraseCrypter("not-the-password", PULUMI_SALT, source="Pulumi.prod.acme.yaml")
    assert "not-the-password" not in str(info.value)
    assert isinstance(info.value, CryptoError)


@pytest.mark.parametrize(
    ("salt", "message"),
    [
        ("", "malformed encryptionsalt"),
        ("v2:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ==", "malformed encryptionsalt"),
        ("v1:fozI5u6B030", "malformed encryptionsalt"),
        ("v1:@@@:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ==", "salt is not valid base64"),
        ("v1:fozI5u6B030=:v1:F+6ZduKKd8G0:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ==", "nonce size is incorrect"),
        ("v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L", "malformed secure value"),
    ],
)
def test_malformed_salt_is_not_reported_as_wrong_passphrase(salt: str, message: str) -> None:
    with pytest.raises(CryptoError, match=message) as info:
        pp.PassphraseCrypter("password", salt, source="Pulumi.x.yaml")
    assert not isinstance(info.value, PassphraseError)
    assert str(info.value).startswith("Pulumi.x.yaml")


def test_decrypt_errors_name_the_key_path_never_the_value(crypter: pp.PassphraseCrypter) -> None:
    good = crypter.encrypt(CANARY)
    version, nonce, ct = good.split(":")
    raw = bytearray(base64.b64decode(ct))
    raw[0] ^= 1
    flipped = f"{version}:{nonce}:{base64.b64encode(bytes(raw)).decode()}"
    cases = {
        flipped: "does not decrypt",
        "v2:" + good[3:]: "unknown secure value version",
        good + ":x": "malformed secure value",
        f"v1:{nonce}:@@": "not valid base64",
        f"v1:AAAA:{ct}": "nonce size is incorrect",
    }
    for value, message in cases.items():
        with pytest.raises(CryptoError, match=message) as info:
            crypter.decrypt(value, key_path="clawdbot:secrets.API_KEY")
        text = str(info.value)
        assert text.startswith("Pulumi.prod.acme.yaml: clawdbot:secrets.API_KEY: "), text
        assert CANARY not in text and value not in text and PASSPHRASE not in text


def test_value_from_another_stack_does_not_decrypt(
    crypter: pp.PassphraseCrypter, pulumi_crypter: pp.PassphraseCrypter
) -> None:
    with pytest.raises(CryptoError, match="does not decrypt"):
        crypter.decrypt(pulumi_crypter.encrypt(CANARY))


def test_repr_hides_the_key(crypter: pp.PassphraseCrypter) -> None:
    assert repr(crypter) == "PassphraseCrypter(source='Pulumi.prod.acme.yaml')"


# --- passphrase files -------------------------------------------------------------------------


def _write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_passphrase_file_is_read_and_trimmed(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "passphrase", f"  {PASSPHRASE}\n", mode)
    assert pp.read_passphrase_file(path) == PASSPHRASE


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700, 0o200])
def test_passphrase_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "passphrase", PASSPHRASE, mode)
    with pytest.raises(PermissionsError, match=f"mode {mode:04o}; it must be 0600 or 0400") as info:
        pp.read_passphrase_file(path)
    assert str(path) in str(info.value) and PASSPHRASE not in str(info.value)


def test_passphrase_file_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=f"{missing} does not exist"):
        pp.read_passphrase_file(missing)
    empty = _write(tmp_path / "empty", " \n", 0o600)
    with pytest.raises(ConfigError, match=f"{empty} is empty"):
        pp.read_passphrase_file(empty)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    os.chmod(binary, 0o600)
    with pytest.raises(ConfigError, match="is not UTF-8"):
        pp.read_passphrase_file(binary)
    with pytest.raises(ConfigError, match="is not a regular file"):
        pp.read_passphrase_file(tmp_path)


def test_passphrase_file_symlink_is_refused(tmp_path: Path) -> None:
    # A link could point the check at one file while another is read; refuse links outright.
    target = _write(tmp_path / "real", PASSPHRASE, 0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match=f"{link} cannot be opened"):
        pp.read_passphrase_file(link)
