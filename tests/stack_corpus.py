"""Stack files a hostile or a careless operator might write, and the one-line error each must give.

Each case is (id, bytes of Pulumi.prod.acme.yaml, substring of its `Error:` line, or None for a
valid file). The texts derive from the shipped example stack, so each differs from a valid file
in one way. `HOSTILE` are built to exhaust time or memory; `CARELESS` are mistakes people make.
"""

from __future__ import annotations

from orchestrator.core.contract import REPO_ROOT

# The shipped example with its two declared secrets set (ciphertexts plan never opens).
BASE = (REPO_ROOT / "Pulumi.prod.acme.yaml").read_text(encoding="utf-8").rstrip("\n") + (
    "\n  clawdbot:secrets:\n"
    "    WEBHOOK_SECRET:\n      secure: v1:fkhVcjfsrDW9z74F:2bDI7YsKmgKibkelreajRRoOufTQoM/vgf81ronwdXPn3p7thqYM\n"
    "    STRIPE_KEY:\n      secure: v1:2Gqk5JBNNolPxNf+:KkpuhzxiD82O/RBT1oXfdk0xr3HvUM/GEMc9nTLCb9MmHWLzNkc\n"
)
CANARY = "whsec_canary_7f3e_do_not_print"
"""A plaintext secret typed where an encrypted one belongs: it must never appear in any output."""

_HEAD, _SECRETS = BASE.split("  clawdbot:secrets:\n", 1)
STRIPE = "    STRIPE_KEY:\n" + _SECRETS.split("    STRIPE_KEY:\n", 1)[1]
WEBHOOK_SECURE = _SECRETS.split("\n", 2)[1].strip()
"""`secure: v1:…` of the example's WEBHOOK_SECRET."""

Case = tuple[str, bytes, str | None]


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def business_config(body: str) -> str:
    """The example with its business config (`clawdbot:tenant.config`) replaced by `body`."""
    head, tail = BASE.split("    config:\n", 1)
    rest = tail.split("    secret_names:", 1)[1]
    lines = "".join(f"      {line}\n" for line in body.splitlines())
    return f"{head}    config:\n{lines}    secret_names:{rest}"


def secrets(body: str) -> str:
    """The example with `clawdbot:secrets` holding `body` (its lines indented under the key)."""
    return f"{_HEAD}  clawdbot:secrets:\n{body}"


def _bomb(levels: int = 9, width: int = 10) -> str:
    lines = [f"lol0: &lol0 [{', '.join(['lol'] * width)}]"]
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines)


def _crons_bomb() -> str:
    crons = '    crons:\n      - "*/15 * * * *"\n'
    bomb = "    crons: &c0 [a, a, a, a, a, a, a, a, a, a]\n"
    bomb += "".join(f"    x{i}: &c{i} [{', '.join([f'*c{i - 1}'] * 10)}]\n" for i in range(1, 10))
    return edit(crons, bomb)


def _cases(rows: list[tuple[str, str | bytes, str | None]]) -> list[Case]:
    return [(name, text.encode("utf-8") if isinstance(text, str) else text, error) for name, text, error in rows]


HOSTILE: list[Case] = _cases([
    ("alias-bomb-config", business_config(_bomb()), "values once aliases are expanded"),
    ("alias-bomb-crons", _crons_bomb(), "values once aliases are expanded"),
    ("alias-bomb-long-text", business_config(
        "big: &big '" + "x" * 200_000 + "'\nmany: [" + ", ".join(["*big"] * 60) + "]"
    ), "characters of text once aliases are expanded"),
    ("alias-in-keys", business_config(_bomb(3) + "\n? *lol3\n: 1"), "a mapping key must be text, not a collection"),
    ("anchor-on-complex-key", business_config("? &k [a, b]\n: 1"), "a mapping key must be text, not a collection"),
    ("merge-key", business_config("base: &b {a: 1}\nmerged:\n  <<: *b"), "merge keys (<<) are not supported"),
    ("recursive-alias", business_config("loop: &l [1, *l]"), "an alias refers to a collection that contains it"),
    ("deep-flow-sequence", business_config("deep: " + "[" * 20_000 + "]" * 20_000), "nested deeper than 64 levels"),
    ("deep-flow-unclosed", business_config("deep: " + "[" * 20_000), "nested deeper than 64 levels"),
    ("deep-flow-map", business_config("deep: " + "{a: " * 20_000 + "1" + "}" * 20_000), "nested deeper than 64"),
    ("deep-block-sequence", business_config("deep:\n" + "".join("  " * i + "-\n" for i in range(1, 200))),
     "nested deeper than 64 levels"),
    ("deep-block-map", business_config("deep:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200))),
     "nested deeper than 64 levels"),
    ("huge-document", BASE + "# " + "x" * (5 * 1024 * 1024) + "\n", "a stack file may hold at most 4194304"),
    ("long-scalar", business_config("blob: '" + "x" * 3_000_000 + "'"), "clawdbot:tenant.config: is 30000"),
    ("long-key", business_config("? '" + "k" * 1_500_000 + "'\n: 1"), "clawdbot:tenant.config: is 15000"),
    ("long-simple-key", business_config("'" + "k" * 1_500_000 + "': 1"), "not valid YAML"),  # over 1024: not a key
    ("long-unknown-field", edit("    relay_key_generation: 1", "    ? " + "z" * 1_000_000 + "\n    : 1"),
     "clawdbot:tenant.zzzzzzzz"),
    ("many-values", business_config("many: [" + ", ".join(["1"] * 150_000) + "]"), "more than 100000 values"),
    ("many-documents", (BASE + "---\n") * 1000, "holds more than one YAML document"),
    ("python-object-tag", business_config("x: !!python/object/apply:os.system ['echo pwned']"), "is not allowed"),
    ("python-name-tag", edit("currency: EUR", "currency: !!python/name:os.system ''"), "is not allowed"),
    ("local-tag", edit("currency: EUR", "currency: !Ref EUR"), "tag '!Ref' is not allowed in a stack file"),
    ("binary-tag", edit("currency: EUR", "currency: !!binary RVVS"), "is not allowed in a stack file"),
    ("set-tag", business_config("s: !!set {a, b}"), "is not allowed in a stack file"),
])  # fmt: skip

CARELESS: list[Case] = _cases([
    # Every business secret is a Pulumi secret (issue 10, item 1).
    ("secret-plain-text", secrets(f"    WEBHOOK_SECRET: {CANARY}\n{STRIPE}"),
     "clawdbot:secrets.WEBHOOK_SECRET: is not encrypted"),
    ("secret-plain-says-how", secrets(f"    WEBHOOK_SECRET: '{CANARY}'\n{STRIPE}"),
     "set it with `python -m orchestrator secrets set acme WEBHOOK_SECRET`"),
    ("secret-plain-number", secrets(f"    WEBHOOK_SECRET: 12345\n{STRIPE}"), "WEBHOOK_SECRET: is not encrypted"),
    ("secret-all-plain", secrets(f"    WEBHOOK_SECRET: {CANARY}\n    STRIPE_KEY: {CANARY}\n"), "is not encrypted"),
    ("secret-null", secrets(f"    WEBHOOK_SECRET:\n{STRIPE}"), "WEBHOOK_SECRET: is not encrypted"),
    ("secret-in-a-list", secrets(f"    WEBHOOK_SECRET: [{CANARY}]\n{STRIPE}"), "WEBHOOK_SECRET: is not encrypted"),
    ("secret-one-level-down", secrets(f"    WEBHOOK_SECRET:\n      inner:\n        {WEBHOOK_SECURE}\n{STRIPE}"),
     "WEBHOOK_SECRET: is not encrypted"),
    ("secret-last-plain", secrets(f"    WEBHOOK_SECRET:\n      {WEBHOOK_SECURE}\n    STRIPE_KEY: {CANARY}\n"),
     "clawdbot:secrets.STRIPE_KEY: is not encrypted"),
    ("secrets-one-secure-value", secrets(f"    {WEBHOOK_SECURE}\n"), "clawdbot:secrets: must be an object of NAME"),
    ("secrets-as-text", secrets(f"    {CANARY}\n"), "clawdbot:secrets: must be an object of NAME"),
    # Errors keep their place: stack, key path, reason (issue 10, item 6).
    ("tenant-as-text", edit("  clawdbot:tenant:\n", '  clawdbot:tenant: "acme"\n  x:was-the-tenant:\n'),
     "clawdbot:tenant: must be an object, not text"),
    ("tenant-as-secure", edit("  clawdbot:tenant:\n", "  clawdbot:tenant:\n    secure: v1:AAAA\n  x:was-the-tenant:\n"),
     "clawdbot:tenant: a secret cannot sit here"),
    ("tenant-holds-a-secret", edit("currency: EUR", "currency:\n        secure: v1:AAAA"),
     "clawdbot:tenant.config.currency: a secret cannot sit here"),
    ("nan", edit("currency: EUR", "ratio: .nan"), "clawdbot:tenant.config.ratio: .nan is not a JSON number"),
    ("inf", edit("currency: EUR", "ratio: .inf"), "clawdbot:tenant.config.ratio: .inf is not a JSON number"),
    ("minus-inf-in-list", edit("currency: EUR", "ratios: [1, -.Inf]"), "clawdbot:tenant.config.ratios[1]: -.Inf"),
    ("nan-tagged", edit("currency: EUR", "ratio: !!float .NaN"), "clawdbot:tenant.config.ratio: .NaN is not a JSON"),
    ("overflowing-float", edit("currency: EUR", "ratio: 1e999"), "clawdbot:tenant.config.ratio: ambiguous"),
    ("unknown-key-secret", edit("  clawdbot:secrets:", "  clawdbot:secret:"),
     "clawdbot:secret: unknown key; did you mean clawdbot:secrets?"),
    ("unknown-key-tenants", edit("  clawdbot:tenant:", "  clawdbot:tenants:"), "did you mean clawdbot:tenant?"),
    ("misspelt-namespace", edit("  clawdbot:secrets:", "  clawbot:secrets:"), "clawbot:secrets: unknown key; did you"),
    ("version-as-text", edit("config_version: 3", 'config_version: "3"'),
     "clawdbot:tenant.config_version: Input should be a valid integer (found text)"),
    ("version-as-float", edit("config_version: 3", "config_version: 3.0"), ".config_version: Input should be a valid"),
    ("version-octal", edit("config_version: 3", "config_version: 010"), ".config_version: ambiguous number-like value"),
    ("version-underscore", edit("config_version: 3", "config_version: 1_0"), ".config_version: ambiguous"),
    ("apex-quoted-yes", edit("relay_key_generation: 1", 'relay_key_generation: 1\n    allow_apex_catch_all: "yes"'),
     ".allow_apex_catch_all: Input should be a valid boolean (found text)"),
    ("apex-bare-yes", edit("relay_key_generation: 1", "relay_key_generation: 1\n    allow_apex_catch_all: yes"),
     ".allow_apex_catch_all: Input should be a valid boolean"),
    ("compat-epoch", edit("d1_location_hint: weur", "d1_location_hint: weur\n    compatibility_date: 1767225600"),
     ".compatibility_date: must be a date written YYYY-MM-DD"),
    ("compat-slashes", edit("d1_location_hint: weur", 'd1_location_hint: weur\n    compatibility_date: "2026/01/01"'),
     ".compatibility_date: must be a date written YYYY-MM-DD"),
    ("limits-as-text", edit("cpu_ms: 50", 'cpu_ms: "50"'), "clawdbot:tenant.limits.cpu_ms: Input should be a valid"),
    ("generation-as-bool", edit("relay_key_generation: 1", "relay_key_generation: true"),
     ".relay_key_generation: Input should be a valid integer"),
    ("routes-as-text", edit('    routes:\n      - "shop.acme.example.com/*"\n      - "api.acme.example.com/v1/*"\n',
                            '    routes: "shop.acme.example.com/*"\n'), ".routes: Input should be a valid list"),
    ("duplicate-key", edit("d1_location_hint: weur", "d1_location_hint: weur\n    d1_location_hint: enam"),
     "clawdbot:tenant.d1_location_hint: duplicate key"),
    ("integer-key", edit("currency: EUR", "1: EUR"), "mapping key 1 must be text (quote it)"),
    ("tab-indent", edit("    d1_location_hint: weur", "\td1_location_hint: weur"), "not valid YAML"),
    ("not-utf8", BASE.encode().replace(b"Hello from Acme", b"Hello \xff Acme"), "is not UTF-8 text"),
    ("control-character", edit("Hello from Acme", "Hello \x07 Acme"), "control characters are not allowed"),
    ("empty-file", "", "clawdbot:tenant: missing"),
    ("top-level-list", "- config\n", "must be a YAML mapping at the top level"),
])  # fmt: skip

VALID: list[Case] = _cases([
    ("example", BASE, None),
    ("anchors-within-bounds", edit("      features: {wishlist: true, reviews: false}",
                                   "      features: &f {wishlist: true, reviews: false}\n      beta: *f"), None),
])  # fmt: skip

ALL: list[Case] = HOSTILE + CARELESS + VALID
