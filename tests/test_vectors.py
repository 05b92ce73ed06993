"""contract/vectors.json: up to date, complete, and agreeing with WebCrypto (what the Worker uses)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import crypto
from orchestrator.core.contract import REPO_ROOT, VECTORS_PATH
from orchestrator.core.errors import CryptoError
from orchestrator.testing import vectors as vectors_tool


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return data


def test_committed_vectors_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.testing", "vectors", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_check_fails_on_stale_or_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "vectors.json"
    assert vectors_tool.main(["vectors", "--check", "--path", str(path)]) == 1
    assert "is missing; run `python -m orchestrator.testing vectors`" in capsys.readouterr().err
    assert vectors_tool.main(["vectors", "--path", str(path)]) == 0
    assert vectors_tool.main(["vectors", "--check", "--path", str(path)]) == 0
    path.write_text(path.read_text(encoding="utf-8").replace('"acme"', '"acmf"', 1), encoding="utf-8")
    assert vectors_tool.main(["vectors", "--check", "--path", str(path)]) == 1
    assert "is out of date" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.json"]  # no temp file left behind


def test_generation_is_deterministic() -> None:
    assert vectors_tool.vectors_text() == vectors_tool.vectors_text()


def test_schema(vectors: dict[str, Any]) -> None:
    assert list(vectors) == [
        "v", "generated_by", "tenant", "relay_key_b64", "derived_keys_hex",
        "envelopes", "configs", "health_tokens", "webhooks", "rejects",
    ]  # fmt: skip
    assert (vectors["v"], vectors["tenant"]) == (1, "acme")
    assert vectors["generated_by"] == "python -m orchestrator.testing vectors"
    assert set(vectors["derived_keys_hex"]) == {"secret-envelope", "envelope-nonce", "config-mac", "health-token"}
    assert all(set(e) == {"name", "plaintext", "kv_value"} for e in vectors["envelopes"])
    assert all(set(c) == {"payload", "payload_text", "kv_value"} for c in vectors["configs"])
    assert all(set(h) == {"now", "ts", "nonce", "token"} for h in vectors["health_tokens"])
    assert all(set(w) == {"secret", "body", "signature"} for w in vectors["webhooks"])
    rejects = vectors["rejects"]
    assert set(rejects) == {"wrong_relay_key_b64", "tampered_envelopes", "tampered_configs"}
    assert all(set(r) == {"why", "name", "kv_value"} for r in rejects["tampered_envelopes"])
    assert all(set(r) == {"why", "kv_value"} for r in rejects["tampered_configs"])


def test_coverage_of_edge_cases(vectors: dict[str, Any]) -> None:
    plaintexts = [e["plaintext"] for e in vectors["envelopes"]]
    assert "" in plaintexts
    assert any(not p.isascii() for p in plaintexts)
    assert any(len(p.encode()) >= 4096 for p in plaintexts)
    assert len({c["payload"]["version"] for c in vectors["configs"]}) >= 2
    assert any(not c["payload_text"].isascii() for c in vectors["configs"])
    whys = [r["why"] for r in vectors["rejects"]["tampered_envelopes"]]
    for needle in ("ct byte flipped", "iv byte flipped", "tenant field", "another name", "alg", "v is 2"):
        assert any(needle in why for why in whys), needle
    whys = [r["why"] for r in vectors["rejects"]["tampered_configs"]]
    for needle in ("mac byte flipped", "payload edited", "other tenant's payload signed with that tenant's key"):
        assert any(needle in why for why in whys), needle
    kv_values = [r["kv_value"] for r in vectors["rejects"]["tampered_envelopes"]]
    assert len(set(map(str, kv_values))) >= len(kv_values) - 1  # one row reuses a good envelope on purpose


def test_python_accepts_every_good_vector(vectors: dict[str, Any]) -> None:
    key = crypto.relay_key_from_b64(vectors["relay_key_b64"])
    tenant = vectors["tenant"]
    for purpose, hex_key in vectors["derived_keys_hex"].items():
        assert crypto.derive_key(key, tenant, purpose).hex() == hex_key
    for env in vectors["envelopes"]:
        assert crypto.open_secret(key, tenant, env["name"], env["kv_value"]) == env["plaintext"]
    for cfg in vectors["configs"]:
        payload = cfg["payload"]
        assert cfg["payload_text"] == crypto.config_payload_text(tenant, payload["version"], payload["config"])
        assert json.loads(cfg["kv_value"])["payload"] == cfg["payload_text"]
        assert crypto.verify_config(key, tenant, cfg["kv_value"]) == payload
    for tok in vectors["health_tokens"]:
        assert tok["token"] == crypto.health_token(key, tenant, tok["ts"], tok["nonce"])
        assert tok["token"].startswith(f"{tok['ts']}.{tok['nonce']}.")
    for hook in vectors["webhooks"]:
        assert crypto.webhook_signature(hook["secret"], hook["body"].encode()) == hook["signature"]


def test_python_rejects_every_bad_vector(vectors: dict[str, Any]) -> None:
    key = crypto.relay_key_from_b64(vectors["relay_key_b64"])
    wrong = crypto.relay_key_from_b64(vectors["rejects"]["wrong_relay_key_b64"])
    tenant = vectors["tenant"]
    for row in vectors["rejects"]["tampered_envelopes"]:
        with pytest.raises(CryptoError):
            crypto.open_secret(key, tenant, row["name"], row["kv_value"])
            pytest.fail(f"accepted tampered envelope: {row['why']}")
    for row in vectors["rejects"]["tampered_configs"]:
        with pytest.raises(CryptoError):
            crypto.verify_config(key, tenant, row["kv_value"])
            pytest.fail(f"accepted tampered config: {row['why']}")
    for env in vectors["envelopes"]:
        with pytest.raises(CryptoError, match="does not authenticate"):
            crypto.open_secret(wrong, tenant, env["name"], env["kv_value"])
    for cfg in vectors["configs"]:
        with pytest.raises(CryptoError, match="MAC does not verify"):
            crypto.verify_config(wrong, tenant, cfg["kv_value"])


# The Worker's side, independently written against docs/contract.md with WebCrypto. Node's
# globalThis.crypto.subtle is the same API workerd exposes, so agreement here means the Worker
# can read what Python writes without waiting for the Worker's own suite.
WEBCRYPTO_CHECK = r"""
const { subtle } = globalThis.crypto;
const V = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
const enc = new TextEncoder(), dec = new TextDecoder("utf-8", { fatal: true });
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const tob64 = (u) => btoa(String.fromCharCode(...new Uint8Array(u)));
const hex = (u) => [...new Uint8Array(u)].map((b) => b.toString(16).padStart(2, "0")).join("");
async function derive(relay, tenant, purpose) {
  const ikm = await subtle.importKey("raw", relay, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256",
    salt: enc.encode("clawdbot-edge/v1"), info: enc.encode(`clawdbot-edge/v1/${purpose}/${tenant}`) }, ikm, 256));
}
async function hmac(key, data) {
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}
async function open(relay, tenant, name, text) {
  const d = JSON.parse(text);
  if (typeof d !== "object" || d === null || Array.isArray(d)) throw new Error("shape");
  if (d.v !== 1 || d.alg !== "A256GCM" || d.tenant !== tenant || d.name !== name) throw new Error("fields");
  const iv = b64(d.iv); if (iv.length !== 12) throw new Error("iv");
  const raw = await derive(relay, tenant, "secret-envelope");
  const key = await subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
  const aad = enc.encode(`clawdbot-edge/v1/secret/${tenant}/${name}`);
  return dec.decode(await subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, key, b64(d.ct)));
}
async function verify(relay, tenant, text) {
  const d = JSON.parse(text);
  if (d.v !== 1 || typeof d.payload !== "string") throw new Error("fields");
  const k = await subtle.importKey("raw", await derive(relay, tenant, "config-mac"),
    { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  if (!(await subtle.verify("HMAC", k, b64(d.mac), enc.encode(d.payload)))) throw new Error("mac");
  const p = JSON.parse(d.payload);
  if (p.tenant !== tenant || !Number.isInteger(p.version) || p.version < 1 || typeof p.config !== "object"
      || p.config === null || Array.isArray(p.config)) throw new Error("payload");
  return p;
}
(async () => {
  const relay = b64(V.relay_key_b64), wrong = b64(V.rejects.wrong_relay_key_b64), t = V.tenant;
  const fails = [];
  for (const [p, h] of Object.entries(V.derived_keys_hex)) {
    if (hex(await derive(relay, t, p)) !== h) fails.push("derive " + p);
  }
  const nonceKey = await derive(relay, t, "envelope-nonce");
  for (const e of V.envelopes) {
    if ((await open(relay, t, e.name, e.kv_value)) !== e.plaintext) fails.push("open " + e.name);
    try { await open(wrong, t, e.name, e.kv_value); fails.push("wrong key opened " + e.name); } catch {}
    const aad = enc.encode(`clawdbot-edge/v1/secret/${t}/${e.name}`), pt = enc.encode(e.plaintext);
    const m = new Uint8Array(aad.length + 1 + pt.length); m.set(aad); m.set(pt, aad.length + 1);
    if (tob64((await hmac(nonceKey, m)).slice(0, 12)) !== JSON.parse(e.kv_value).iv) fails.push("iv " + e.name);
  }
  for (const c of V.configs) {
    const p = await verify(relay, t, c.kv_value);
    if (JSON.stringify(p) !== JSON.stringify(JSON.parse(c.payload_text))) fails.push("payload " + p.version);
    try { await verify(wrong, t, c.kv_value); fails.push("wrong key verified " + p.version); } catch {}
  }
  const healthKey = await derive(relay, t, "health-token");
  for (const h of V.health_tokens) {
    const mac = tob64(await hmac(healthKey, enc.encode(`health:${t}:${h.ts}:${h.nonce}`)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    if (`${h.ts}.${h.nonce}.${mac}` !== h.token) fails.push("health " + h.ts);
  }
  for (const w of V.webhooks) {
    if (tob64(await hmac(enc.encode(w.secret), enc.encode(w.body))) !== w.signature) fails.push("webhook");
  }
  for (const r of V.rejects.tampered_envelopes) {
    try { await open(relay, t, r.name, r.kv_value); fails.push("accepted: " + r.why); } catch {}
  }
  for (const r of V.rejects.tampered_configs) {
    try { await verify(relay, t, r.kv_value); fails.push("accepted: " + r.why); } catch {}
  }
  console.log(JSON.stringify(fails));
})().catch((e) => { console.log(JSON.stringify(["crashed: " + e])); });
"""


def test_webcrypto_agrees_with_every_vector(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot cross-check the vectors with WebCrypto")
    result = subprocess.run(
        [node, "-e", WEBCRYPTO_CHECK, str(VECTORS_PATH)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_relay_key_vector_is_what_random_bytes_would_bind(vectors: dict[str, Any]) -> None:
    # RandomBytes.base64 is standard padded base64 of 32 bytes: 44 characters ending in "=".
    assert len(vectors["relay_key_b64"]) == 44 and vectors["relay_key_b64"].endswith("=")
    assert len(base64.b64decode(vectors["relay_key_b64"], validate=True)) == 32
