"""The local edge bench's `--json` keys: computed from interleaved runs, and each documented in the README."""

from __future__ import annotations

import re

from bench.dispatch_compare import TARGETS as DISPATCH_TARGETS
from bench.local_edge_bench import TARGETS, summarise
from orchestrator.core.contract import REPO_ROOT


def _runs() -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {}
    for n, bare_s, ours_s in ((50, 2.0, 3.0), (200, 10.0, 20.0), (1, 1.0, 1.5)):
        runs[f"bare_{n}_s"] = [bare_s, bare_s * 2, bare_s]
        runs[f"ours_{n}_s"] = [ours_s, ours_s, ours_s * 3]
        runs[f"ours_first_{n}_s"] = [ours_s * 2] * 3
        runs[f"ours_restart_{n}_s"] = [ours_s / 2] * 3
        runs[f"bare_{n}_rss_mib"] = [200.0 + 6 * (n - 1)] * 3
        runs[f"ours_{n}_rss_mib"] = [230.0 + 7 * (n - 1)] * 3
        runs[f"ours_first_{n}_rss_mib"] = [230.0 + 7 * (n - 1)] * 3
    return runs


def test_ratios_are_per_repetition_pairs_then_median() -> None:
    result = summarise(_runs(), [50, 200], 3)
    # Pairs (3/2, 3/4, 9/2): median 1.5, min 0.75 - not the ratio of medians.
    assert result["ratio_e2e_50"] == 1.5 and result["per_rep"]["ratio_e2e_50"] == {"min": 0.75, "median": 1.5}
    assert result["ratio_e2e_200_first_run"] == 4.0  # 40 s each against bare 10, 20, 10
    assert result["mib_per_tenant"] == 7.0 and result["bare_mib_per_worker"] == 6.0
    assert set(result["targets"]) == set(TARGETS)


def test_every_key_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    result = summarise(_runs(), [50, 200], 3)
    keys = [k for k in result if k.startswith(("ratio_", "mib_", "bare_mib"))]
    keys += [*DISPATCH_TARGETS, "dispatch_runtime_ready_ratio", "dispatch_mib_per_tenant", "workers_mib_per_tenant"]
    missing = [k for k in keys if not re.search(rf"`{re.escape(k)}`", readme)]
    assert missing == []


def test_a_size_without_the_first_run_side_has_no_first_run_key() -> None:
    runs = {k: v for k, v in _runs().items() if not k.startswith("ours_first_200")}
    result = summarise(runs, [50, 200], 3)
    assert "ratio_e2e_200_first_run" not in result and "ratio_e2e_50_first_run" in result
