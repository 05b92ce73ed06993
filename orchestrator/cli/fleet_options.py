"""The fleet verbs' shared options: tenant selection, sizing, the API budget, the engine, the pack config.

Options that only `run_operation` reads are kept out of each command's signature in `ctx.meta`
(`_remember`), and `run_settings` applies them to the run's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from orchestrator.config.settings import Settings
from orchestrator.engine.budget import BUDGET_KEYS, ThrottleConfig
from orchestrator.fleet.sizing import Sizing
from orchestrator.ops.fleet_run import DEFAULT_SIZING, ENGINES, run_share, sizing_for_budget


def tenant_selection(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--all", "all_", is_flag=True, help="Every registered tenant.")(fn)
    fn = click.option("--tenant", "tenants", multiple=True, metavar="ID", help="A tenant id (repeatable).")(fn)
    return fn


def fleet_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")(fn)
    fn = click.option(
        "--concurrency",
        type=click.IntRange(1, 32),
        default=None,
        show_default=f"{DEFAULT_SIZING.concurrency} for {ThrottleConfig.requests:,} requests / 5 min",
        help="Stacks operated at once. Default: computed from --api-budget (this node's share of it, "
        "CLAWDBOT_API_BUDGET_SHARE), enough stacks that while some run their engine (no API calls) the others "
        "keep the budget busy: the budget, not the CPU, is the limit.",
    )(fn)
    fn = click.option(
        "--api-budget",
        type=click.IntRange(1, 100_000),
        default=ThrottleConfig.requests,
        show_default=True,
        help="Cloudflare API requests per 5 minutes for one budget (see --api-budget-key).",
    )(fn)
    fn = click.option(
        "--api-budget-key",
        type=click.Choice(BUDGET_KEYS),
        expose_value=False,
        callback=_remember,
        help="What one budget is counted for. Cloudflare counts 1,200 requests / 5 min per user, across all "
        "of that user's API tokens and the dashboard, so the default is one budget for the whole fleet run "
        "(`fleet`, or CLAWDBOT_API_BUDGET_KEY); `token` gives each credential its own, right only when "
        "every token belongs to a different user or is account-owned.",
    )(fn)
    fn = click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default="embedded",
        show_default=True,
        expose_value=False,
        callback=_remember,
        help="Who runs the stacks: `embedded`, threads in this process (one VPS); `temporal`, the workers "
        "of a Temporal cluster (CLAWDBOT_TEMPORAL_ADDRESS, _NAMESPACE, _TASK_QUEUE, _REGION): one workflow "
        "per rollout, at most one operation per stack across every node (a stack another rollout is "
        "operating on is refused, not waited for).",
    )(fn)
    return tenant_selection(fn)


def policy_config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--policy-config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        expose_value=False,
        callback=_remember,
        help="Per-policy settings for the policy pack every preview and up runs (the format of "
        "`pulumi preview --policy-pack-config`, as `policy check --policy-config`); default: "
        "CLAWDBOT_POLICY_CONFIG. The pack itself: CLAWDBOT_POLICY_PACK_DIR (default: policies/).",
    )(fn)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep an option that only run_operation reads out of every command's signature."""
    if value is not None and param.name:
        ctx.meta[f"fleet.{param.name}"] = value


def run_settings(settings: Settings) -> Settings:
    """Settings with this command's --api-budget-key and --policy-config applied."""
    meta = click.get_current_context().meta
    overrides = {name: meta[f"fleet.{name}"] for name in ("api_budget_key", "policy_config") if f"fleet.{name}" in meta}
    return settings.model_copy(update=overrides) if overrides else settings


def run_sizing(settings: Settings, api_budget: int, concurrency: int | None, wave_size: int | None = None) -> Sizing:
    """This command's concurrency and wave size: as given, else sized from the part of the budget that
    runs it (`fleet_run.run_share`: this node's share, or the task queue's with --engine temporal)."""
    cluster = click.get_current_context().meta.get("fleet.engine") == "temporal"
    return sizing_for_budget(api_budget, concurrency, wave_size, share=run_share(settings, cluster=cluster))
