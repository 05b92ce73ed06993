"""Pulumi.<stack>.yaml: decrypting secure values, atomic writes, the CLI's YAML dialect."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pytest

from orchestrator.config import key_paths as kp
from orchestrator.config import stack_file as sf
from orchestrator.config.secrets_provider import PassphraseCrypter
from orchestrator.config.stack_yaml import Segment
from orchestrator.core.errors import ConfigError, CryptoError, PassphraseError

# Pulumi's own test vector (passphrase "password"): one PBKDF2 derivation for the module, cached.
PASSPHRASE = "password"
SALT = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="
CANARY = "canary-webhook-secret-3f9a"


@pytest.fixture(scope="module")
def crypter() -> PassphraseCrypter:
    return PassphraseCrypter(PASSPHRASE, SALT, source="fixture")


def _stack(tmp_path: Path, body: str, *, name: str = "Pulumi.prod.acme.yaml", mode: int = 0o644) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    os.chmod(path, mode)
    return path


def _cli_shaped(crypter: PassphraseCrypter) -> str:
    # The layout `pulumi config set [--secret] [--path]` produces.
    return f"""encryptionsalt: {SALT}
config:
  cloudflare:apiToken:
    secure: {crypter.encrypt("cf-token-canary")}
  clawdbot:tenant:
    id: acme
    compatibility_date: 2024-09-23
    relay_key_generation: 1
    routes:
    - pattern: acme.example.com/*
  clawdbot:secrets:
    WEBHOOK_SECRET:
      secure: {crypter.encrypt(CANARY)}
    LIST:
    - plain
    - secure: {crypter.encrypt("in-a-list")}
"""


# --- reading ----------------------------------------------------------------------------------


def test_reads_and_decrypts_nested_secure_values(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    path = _stack(tmp_path, _cli_shaped(crypter))
    stack = sf.load_stack_file(path)
    assert stack.stack == "prod.acme"
    assert stack.encryption_salt == SALT
    assert stack.secret_key_paths() == [
        "cloudflare:apiToken",
        "clawdbot:secrets.WEBHOOK_SECRET",
        "clawdbot:secrets.LIST[1]",
    ]
    config = sf.read_config(path, PASSPHRASE)
    assert config["cloudflare:apiToken"] == "cf-token-canary"
    assert config["clawdbot:secrets"] == {"WEBHOOK_SECRET": CANARY, "LIST": ["plain", "in-a-list"]}
    assert config["clawdbot:tenant"]["compatibility_date"] == "2024-09-23"  # a string, as the CLI reads it


def test_masked_config_and_raw_get_never_reveal_secrets(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    stack = sf.load_stack_file(_stack(tmp_path, _cli_shaped(crypter)))
    masked = stack.masked_config()
    assert masked["clawdbot:secrets"] == {"WEBHOOK_SECRET": "[secret]", "LIST": ["plain", "[secret]"]}
    assert CANARY not in repr(masked) and CANARY not in repr(stack)
    assert stack.get("clawdbot:tenant.relay_key_generation") == 1
    assert stack.get("clawdbot:tenant.routes[0].pattern") == "acme.example.com/*"
    assert stack.get("clawdbot:tenant.missing.deeper") is None
    assert stack.get("clawdbot:secrets.WEBHOOK_SECRET")["secure"].startswith("v1:")
    assert stack.get("clawdbot:secrets.WEBHOOK_SECRET.secure") is None  # no reaching into a secret


def test_read_config_without_secrets_needs_no_valid_passphrase(tmp_path: Path) -> None:
    path = _stack(tmp_path, "config:\n  clawdbot:tenant:\n    id: acme\n")
    assert sf.read_config(path, "whatever") == {"clawdbot:tenant": {"id": "acme"}}


def test_wrong_passphrase_names_the_file(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    path = _stack(tmp_path, _cli_shaped(crypter))
    with pytest.raises(PassphraseError, match=f"^{path}: incorrect passphrase"):
        sf.read_config(path, "wrong")


def test_undecryptable_value_names_file_and_key_path(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    version, nonce, ct = crypter.encrypt(CANARY).split(":")
    raw = bytearray(base64.b64decode(ct))
    raw[0] ^= 1
    bad = f"{version}:{nonce}:{base64.b64encode(bytes(raw)).decode()}"
    path = _stack(tmp_path, f"encryptionsalt: {SALT}\nconfig:\n  clawdbot:secrets:\n    K:\n      secure: {bad}\n")
    with pytest.raises(CryptoError) as info:
        sf.read_config(path, PASSPHRASE)
    message = str(info.value)
    assert message.startswith(f"{path}: clawdbot:secrets.K: ")
    assert bad not in message and CANARY not in message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("config: [1, 2]\n", "config: Input should be a valid dictionary"),
        ("- a\n", "must be a YAML mapping"),
        ("config:\n  nonamespace: 1\n", "config key 'nonamespace' must be <namespace>:<name>"),
        ("config:\n  a:b: 1\n  a:b: 2\n", ":3: a:b: duplicate key"),
        ("config:\n  a:b: [unclosed\n", ":3: not valid YAML: did not find expected ',' or ']'"),
        ("encryptionsalt: 5\n", "encryptionsalt: Input should be a valid string"),
    ],
)
def test_invalid_files_are_rejected_naming_the_file(tmp_path: Path, body: str, message: str) -> None:
    path = _stack(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        sf.load_stack_file(path)
    assert str(info.value).startswith(f"{path}:")
    assert message in str(info.value)


def test_yaml_errors_do_not_echo_file_content(tmp_path: Path) -> None:
    path = _stack(tmp_path, f"config:\n  a:b: {CANARY}: [\n")
    with pytest.raises(ConfigError) as info:
        sf.load_stack_file(path)
    assert CANARY not in str(info.value)


def test_missing_file_and_non_passphrase_provider(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stack file does not exist"):
        sf.load_stack_file(tmp_path / "Pulumi.prod.nope.yaml")
    path = _stack(tmp_path, "secretsprovider: awskms://alias/x\nencryptedkey: abc\nconfig: {}\n")
    with pytest.raises(ConfigError, match="'awskms://alias/x' is not the passphrase provider"):
        sf.load_stack_file(path).crypter(PASSPHRASE)
    with pytest.raises(ConfigError, match="is not the passphrase provider"):
        sf.set_secret(path, "clawdbot:secrets.X", "v", PASSPHRASE)


def test_yaml_dialect_matches_the_cli(tmp_path: Path) -> None:
    # The full table, with the go-yaml v3 source it follows, is tests/test_stack_yaml.py.
    body = "config:\n  a:b:\n    on: on\n    yes: yes\n    date: 2024-09-23\n    hex: 0x1f\n"
    body += "    o: 0o17\n    t: true\n    f: 1.5\n    e: 1e3\n    sexa: 1:20\n    n: null\n"
    config = sf.load_stack_file(_stack(tmp_path, body)).config["a:b"]
    assert config == {
        "on": "on", "yes": "yes", "date": "2024-09-23", "hex": 31, "o": 15,
        "t": True, "f": 1.5, "e": 1000.0, "sexa": "1:20", "n": None,
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r":3: a:b\.oct: ambiguous number-like value"):
        sf.load_stack_file(_stack(tmp_path, "config:\n  a:b:\n    oct: 012\n"))  # octal 10 to go-yaml, 12 in 1.2


# --- key paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_path", "root", "segments"),
    [
        ("clawdbot:tenant", "clawdbot:tenant", []),
        ("clawdbot:tenant.relay_key_generation", "clawdbot:tenant", ["relay_key_generation"]),
        ("clawdbot:secrets.WEBHOOK_SECRET", "clawdbot:secrets", ["WEBHOOK_SECRET"]),
        ("ns:list[0].name", "ns:list", [0, "name"]),
        ('ns:obj["dotted.key"][12]', "ns:obj", ["dotted.key", 12]),
    ],
)
def test_parse_key_path(key_path: str, root: str, segments: list[Segment]) -> None:
    assert kp.parse_key_path(key_path) == (root, segments)
    assert kp.format_key_path(root, segments) == key_path


@pytest.mark.parametrize(
    ("key_path", "message"),
    [
        ("", "must start with a config key"),
        ("tenant.id", "must be <namespace>:<name>"),
        (":x", "must be <namespace>:<name>"),
        ("a:b:c", "must be <namespace>:<name>"),
        ("ns:k.", "empty or invalid segment"),
        ("ns:k..x", "empty or invalid segment"),
        ("ns:k[-1]", "non-negative integer"),
        ("ns:k[x]", "non-negative integer"),
        ("ns:k[1", "non-negative integer"),
        ('ns:k["x', "unterminated"),
        ("ns:k]", "unexpected character"),
    ],
)
def test_parse_key_path_errors(key_path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        kp.parse_key_path(key_path)
    assert repr(key_path) in str(info.value)


# --- writing ----------------------------------------------------------------------------------


def _files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_set_secret_round_trip_keeps_other_keys_order_and_mode(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    path = _stack(tmp_path, _cli_shaped(crypter), mode=0o640)
    before = sf.load_stack_file(path)
    sf.set_secret(path, "clawdbot:secrets.NEW_SECRET", "new-canary-value", PASSPHRASE)
    text = path.read_text(encoding="utf-8")
    assert "new-canary-value" not in text
    after = sf.load_stack_file(path)
    assert after.encryption_salt == SALT
    assert list(after.document) == ["encryptionsalt", "config"]
    assert list(after.config) == list(before.config)
    assert list(after.config["clawdbot:secrets"]) == ["WEBHOOK_SECRET", "LIST", "NEW_SECRET"]
    # Untouched secure values are kept byte for byte (no needless re-encryption diff).
    assert after.get("clawdbot:secrets.WEBHOOK_SECRET") == before.get("clawdbot:secrets.WEBHOOK_SECRET")
    config = sf.read_config(path, PASSPHRASE)
    assert config["clawdbot:secrets"]["NEW_SECRET"] == "new-canary-value"
    assert config["clawdbot:secrets"]["WEBHOOK_SECRET"] == CANARY
    assert config["clawdbot:tenant"] == sf.load_stack_file(path).config["clawdbot:tenant"]
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert _files(tmp_path) == ["Pulumi.prod.acme.yaml"]


def test_set_secret_creates_encryptionsalt_first(tmp_path: Path) -> None:
    path = _stack(tmp_path, "config:\n  clawdbot:tenant:\n    id: acme\n")
    sf.set_secret(path, "clawdbot:secrets.WEBHOOK_SECRET", CANARY, "fresh passphrase")
    stack = sf.load_stack_file(path)
    assert list(stack.document) == ["encryptionsalt", "config"]
    assert stack.encryption_salt is not None and stack.encryption_salt != SALT
    assert sf.read_config(path, "fresh passphrase")["clawdbot:secrets"] == {"WEBHOOK_SECRET": CANARY}
    with pytest.raises(PassphraseError):
        sf.read_config(path, PASSPHRASE)


def test_set_secrets_writes_several_at_once(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    path = _stack(tmp_path, f"encryptionsalt: {SALT}\nconfig: {{}}\n")
    sf.set_secrets(path, {"clawdbot:secrets.A": "a", "clawdbot:secrets.B": "b", "ns:list[0]": "c"}, PASSPHRASE)
    assert sf.read_config(path, PASSPHRASE) == {"clawdbot:secrets": {"A": "a", "B": "b"}, "ns:list": ["c"]}


def test_set_secret_with_wrong_passphrase_changes_nothing(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    path = _stack(tmp_path, _cli_shaped(crypter))
    before = path.read_bytes()
    with pytest.raises(PassphraseError, match=str(path)) as info:
        sf.set_secret(path, "clawdbot:secrets.X", CANARY, "wrong")
    assert CANARY not in str(info.value)
    assert path.read_bytes() == before


def test_set_value_bumps_generation_and_creates_paths(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    path = _stack(tmp_path, _cli_shaped(crypter))
    sf.set_value(path, "clawdbot:tenant.relay_key_generation", 2)
    sf.set_value(path, "clawdbot:tenant.routes[1]", {"pattern": "api.acme.example.com/*"})
    sf.set_value(path, "clawdbot:new.deep[0].x", "on")
    stack = sf.load_stack_file(path)
    assert stack.get("clawdbot:tenant.relay_key_generation") == 2
    assert stack.get("clawdbot:tenant.routes[1].pattern") == "api.acme.example.com/*"
    assert stack.config["clawdbot:new"] == {"deep": [{"x": "on"}]}  # "on" stays a string
    assert stack.get("clawdbot:tenant.compatibility_date") == "2024-09-23"
    assert sf.read_config(path, PASSPHRASE)["clawdbot:secrets"]["WEBHOOK_SECRET"] == CANARY


@pytest.mark.parametrize(
    ("key_path", "value", "message"),
    [
        ("clawdbot:secrets.WEBHOOK_SECRET", "plain", "holds a secret; refusing to replace it"),
        ("clawdbot:secrets", {}, "holds a secret; refusing to replace it"),
        ("clawdbot:secrets.WEBHOOK_SECRET.x", 1, "a secret sits on this path"),
        ("clawdbot:tenant.id.x", 1, ".x reaches into text, not an object"),
        ("clawdbot:tenant[0]", 1, "[0] indexes an object, not a list"),
        ("clawdbot:tenant.routes[5]", 1, "index 5 is past the end of a list of 1"),
        ("clawdbot:x", {"secure": "v1:a:b"}, "use set_secret to write a secure value"),
        ("clawdbot:x", object(), "object is not a config value type"),
        ("clawdbot:x", {1: "a"}, "object keys must be strings"),
    ],
)
def test_set_value_errors_change_nothing(
    tmp_path: Path, crypter: PassphraseCrypter, key_path: str, value: object, message: str
) -> None:
    path = _stack(tmp_path, _cli_shaped(crypter))
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")) as info:
        sf.set_value(path, key_path, value)
    assert str(info.value).startswith(str(path))
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["Pulumi.prod.acme.yaml"]


def test_failed_replace_leaves_file_and_no_temp(
    tmp_path: Path, crypter: PassphraseCrypter, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _stack(tmp_path, _cli_shaped(crypter))
    before = path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space left"):
        sf.set_secret(path, "clawdbot:secrets.X", CANARY, PASSPHRASE)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["Pulumi.prod.acme.yaml"]


def test_missing_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stack file does not exist"):
        sf.set_value(tmp_path / "Pulumi.prod.nope.yaml", "clawdbot:x", 1)
    assert _files(tmp_path) == []


def test_symlinked_stack_file_keeps_its_link(tmp_path: Path) -> None:
    target = _stack(tmp_path, "config: {}\n", name="real.yaml")
    link = tmp_path / "Pulumi.prod.acme.yaml"
    link.symlink_to(target)
    sf.set_value(link, "clawdbot:x", 1)
    assert link.is_symlink()
    assert sf.load_stack_file(target).config == {"clawdbot:x": 1}


def test_concurrent_writers_do_not_lose_updates(tmp_path: Path) -> None:
    path = _stack(tmp_path, "config: {}\n")
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            sf.set_value(path, f"clawdbot:k{i}", i)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sf.load_stack_file(path).config == {f"clawdbot:k{i}": i for i in range(12)}


def test_written_strings_read_back_as_strings(tmp_path: Path) -> None:
    path = _stack(tmp_path, "config: {}\n")
    tricky = ["on", "yes", "012", "0o17", "1:20", "2024-09-23", "1e3", "null", "~", "true", ".inf", "Grüße"]
    sf.set_value(path, "clawdbot:strings", tricky)
    assert sf.load_stack_file(path).config["clawdbot:strings"] == tricky


def test_a_stack_config_read_is_owned_by_its_caller(tmp_path: Path) -> None:
    """`load_stack_config` hands over the parsed document without copying it: each call parses its
    own, so a change to one result (a nested value, an alias's shared one) reaches no other read."""
    path = _stack(tmp_path, "config:\n  a:b: &shared {list: [1, 2]}\n  a:c: *shared\n")
    first = sf.load_stack_config(path)
    first["a:b"]["list"].append(3)
    assert first["a:c"]["list"] == [1, 2, 3]  # one alias, one value, as StackFile.config keeps it
    second = sf.load_stack_config(path)
    assert second == {"a:b": {"list": [1, 2]}, "a:c": {"list": [1, 2]}}
    assert second["a:b"] is not first["a:b"]
    # StackFile keeps its document: what it hands out is still a copy.
    stack = sf.load_stack_file(path)
    stack.config["a:b"]["list"].clear()
    assert stack.config["a:b"]["list"] == [1, 2]


def test_tenant_specs_read_one_after_another_share_nothing(tmp_path: Path) -> None:
    from orchestrator.config.tenant_config import load_tenant_spec, read_stack_config
    from orchestrator.core.contract import REPO_ROOT

    project = tmp_path / "project"
    project.mkdir()
    for tenant in ("acme", "globex"):
        body = (REPO_ROOT / "Pulumi.prod.acme.yaml").read_text().replace("acme", tenant)
        (project / f"Pulumi.prod.{tenant}.yaml").write_text(body)
    features = {"wishlist": True, "reviews": False}
    read_stack_config(project, "prod.acme")["clawdbot:tenant"]["config"]["features"]["wishlist"] = False
    first = load_tenant_spec(project, "prod.acme")
    assert first.config["features"] == features
    nested = first.config["features"]
    assert isinstance(nested, dict)
    nested["wishlist"] = False  # a frozen model's nested dict is still a dict
    assert load_tenant_spec(project, "prod.acme").config["features"] == features
    assert load_tenant_spec(project, "prod.globex").config["features"] == features


def test_an_endless_or_huge_stack_file_is_refused_reading_one_byte_past_the_limit(tmp_path: Path) -> None:
    # Read in 64 KiB chunks: CPython 3.11's BufferedReader.read(n) allocates n bytes before reading
    # (Modules/_io/bufferedio.c, _bufferedreader_read_generic: PyBytes_FromStringAndSize(NULL, n);
    # strace showed an mmap, mremap and munmap per 1 KiB file for n = 4 MiB + 1), and glibc serves
    # allocations below M_MMAP_THRESHOLD (128 KiB by default, mallopt(3)) from the heap instead.
    import tracemalloc

    from orchestrator.config.stack_yaml import MAX_FILE_BYTES

    endless = tmp_path / "Pulumi.prod.zero.yaml"
    endless.symlink_to("/dev/zero")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=f"is {MAX_FILE_BYTES + 1} bytes; a stack file may hold at most"):
            sf.load_stack_config(endless)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_FILE_BYTES  # the bytes read, joined once, and their text: never more
    exact = _stack(tmp_path, "config:\n  a:b: '" + "x" * (MAX_FILE_BYTES - 20) + "'\n", name="Pulumi.prod.big.yaml")
    assert exact.stat().st_size <= MAX_FILE_BYTES
    assert len(sf.load_stack_config(exact)["a:b"]) == MAX_FILE_BYTES - 20
    with pytest.raises(ConfigError, match="cannot be read"):
        sf.load_stack_config(tmp_path)  # a directory
    with pytest.raises(ConfigError, match="stack file does not exist"):
        sf.load_stack_config(tmp_path / "missing.yaml")
