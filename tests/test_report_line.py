"""`core.masking.report_line`: the one way text reaches a report, a log or an answer.

Redaction comes before the cut to one line: a secret value cut in half by `one_line` first is no
longer the value `redact` looks for, and its first half would be printed.
"""

from __future__ import annotations

import re

import pytest

from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.masking import MAX_DETAIL, REDACTED, one_line, redact, report_line

TOKEN = "cf-token-0123456789abcdefghij"


@pytest.mark.parametrize("limit", [40, 120, MAX_DETAIL])
def test_a_secret_across_the_cut_is_redacted_not_halved(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    text = "x" * (limit - 20) + f"\n  token {TOKEN} at the end"
    line = report_line(text, limit)
    assert len(line) <= limit and "\n" not in line
    assert TOKEN[:8] not in line, line
    # The other order is the bug this guards against: it prints the token's first half.
    assert TOKEN[:8] in redact(one_line(text, limit))


def test_an_exception_is_its_text_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    line = report_line(RuntimeError(f"HTTP 403 for Authorization: Bearer {TOKEN}\ntraceback..."))
    assert TOKEN not in line and REDACTED in line and line.startswith("HTTP 403 for Authorization:")


def test_no_module_composes_its_own() -> None:
    # One rule, one place: the composition lives in core/masking.py only.
    pattern = re.compile(r"one_line\(\s*redact\(")
    found = [
        str(path.relative_to(REPO_ROOT))
        for root in ("orchestrator", "components", "policies", "bench")
        for path in (REPO_ROOT / root).rglob("*.py")
        if path.name != "masking.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []
