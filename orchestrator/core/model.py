"""The one schema for a tenant (`TenantSpec`) and for the platform stack (`PlatformSpec`).

Everything a stack's config can say is validated here, before any resource is registered.
Limits come from Cloudflare's published platform limits (shared/reference/cloudflare-pulumi.md §5)
and from the names our tenant id ends up in (script, KV title, D1 name: `clawdbot-<env>-<tenant>`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.core.cron import validate_cron

NAME_PREFIX = "clawdbot"
"""Every account-wide name we create starts with this, so the fleet's objects are recognisable."""
MAX_TENANT_ID = 32
MAX_ENVIRONMENT = 12
# Worker script names are limited to 63 characters: prefix + env + tenant + two dashes fit in 59.
MAX_CONFIG_BYTES = 1024 * 1024
"""The business config is embedded in the script as last-known-good; Workers scripts are capped
at 3 MB compressed (Free), so the config gets a 1 MiB budget, far under KV's 25 MiB value limit."""
MAX_ROUTES = 100
MAX_CUSTOM_DOMAINS = 100
MAX_CRONS = 5
"""Cloudflare's Free plan allows 5 cron triggers per account; a tenant never needs more."""
MAX_SECRETS = 64
EARLIEST_COMPATIBILITY_DATE = dt.date(2021, 11, 3)
"""The first date Workers accepts for ES-module scripts with compatibility dates."""

D1LocationHint = Literal["wnam", "enam", "weur", "eeur", "apac", "oc"]

_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?:{_DNS_LABEL}\.)+[a-z]{{2,63}}$")
_ROUTE_HOST_RE = re.compile(rf"^(?:\*\.?)?(?:{_DNS_LABEL}\.)*{_DNS_LABEL}\.[a-z]{{2,63}}$")


def _check_hostname(value: str) -> str:
    if len(value) > 253 or not _HOSTNAME_RE.match(value):
        raise ValueError(f"{value!r} is not a lower-case DNS hostname")
    return value


Hostname = Annotated[str, AfterValidator(_check_hostname)]
TENANT_ID_PATTERN = r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$"
SECRET_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"
TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN, min_length=2, max_length=MAX_TENANT_ID)]
# No hyphen: `clawdbot-<env>-<tenant>` must split one way only, or tenant `eu-acme` in env `prod`
# and tenant `acme` in env `prod-eu` would claim the same account-wide names.
Environment = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*$", min_length=2, max_length=MAX_ENVIRONMENT)]
SecretName = Annotated[str, StringConstraints(pattern=SECRET_NAME_PATTERN)]
CompatibilityFlag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
_TENANT_ID: TypeAdapter[str] = TypeAdapter(TenantId)
_SECRET_NAME: TypeAdapter[str] = TypeAdapter(SecretName)


def is_tenant_id(value: str) -> bool:
    """The `TenantSpec.id` rule, for input checked before any stack file is read (CLI arguments)."""
    try:
        _TENANT_ID.validate_python(value)
    except ValidationError:
        return False
    return True


def is_secret_name(value: str) -> bool:
    """The `SecretName` rule, for a name checked before any prompt for its value."""
    try:
        _SECRET_NAME.validate_python(value)
    except ValidationError:
        return False
    return True


def _check_compatibility_date(value: dt.date) -> dt.date:
    if value < EARLIEST_COMPATIBILITY_DATE:
        raise ValueError(f"{value} is before {EARLIEST_COMPATIBILITY_DATE}, the earliest date Workers accepts")
    if value > dt.date.today():
        raise ValueError(f"{value} is in the future; Cloudflare rejects future compatibility dates")
    return value


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date_from_text(value: object) -> object:
    """Dates are written YYYY-MM-DD: a number (a Unix time to pydantic's lax mode) is refused."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a calendar date") from None
    raise ValueError("must be a date written YYYY-MM-DD")


CompatibilityDate = Annotated[dt.date, BeforeValidator(_date_from_text), AfterValidator(_check_compatibility_date)]


class FrozenModel(BaseModel):
    """Immutable and strict: unknown fields are errors, never silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class StrictModel(FrozenModel):
    """Config as written by people: a value of the wrong YAML type is refused, never coerced
    (`config_version: "3"`, `allow_apex_catch_all: "yes"`, `compatibility_date: 1767225600`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Zone(StrictModel):
    """The Cloudflare zone a tenant's routes and domains live in."""

    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    """Zone id (32 hex characters, from the Cloudflare dashboard)."""
    name: Hostname
    """Zone apex, e.g. `acme.example.com`."""

    def contains(self, host: str) -> bool:
        return host == self.name or host.endswith("." + self.name)


class Limits(StrictModel):
    """Optional per-Worker limits (Standard usage model)."""

    cpu_ms: Annotated[int, Field(ge=10, le=300_000)] | None = None
    """CPU time per request in milliseconds."""
    subrequests: Annotated[int, Field(ge=1, le=10_000)] | None = None
    """Subrequests per request."""


def _check_egress(value: str) -> str:
    _check_hostname(value.removeprefix("*."))
    return value


EgressPattern = Annotated[str, AfterValidator(_check_egress)]
"""An exact hostname (`api.stripe.com`) or `*.<hostname>` (names below it): worker_src/src/dispatch/egress.js."""
PlanName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Isolation = Literal["workers", "dispatch"]
MAX_EGRESS = 100


class PlanLimits(StrictModel):
    """Custom limits the dispatcher applies per call to every tenant on a plan (Workers for Platforms)."""

    cpu_ms: Annotated[int, Field(ge=1, le=300_000)]
    subrequests: Annotated[int, Field(ge=1, le=10_000)]


class TenantSpec(StrictModel):
    """One customer's edge, as written under `clawdbot:tenant` in `Pulumi.prod.<tenant>.yaml`."""

    id: TenantId
    """DNS-label-safe tenant id; part of every Cloudflare name the tenant gets."""
    zone: Zone
    routes: Annotated[list[str], Field(max_length=MAX_ROUTES)] = []
    """Worker route patterns, e.g. `shop.acme.example.com/*`; each host inside `zone`."""
    custom_domains: Annotated[list[Hostname], Field(max_length=MAX_CUSTOM_DOMAINS)] = []
    """Hostnames served by the Worker as custom domains; each inside `zone`."""
    crons: Annotated[list[str], Field(max_length=MAX_CRONS)] = []
    """Cron schedules for the Worker's `scheduled` handler (5-field cron, UTC)."""
    compatibility_date: CompatibilityDate | None = None
    """Overrides the platform default compatibility date."""
    compatibility_flags: list[CompatibilityFlag] | None = None
    """Overrides the platform default compatibility flags."""
    d1_location_hint: D1LocationHint | None = None
    """Where D1 places the primary. Changing it replaces the database, so it is protected."""
    d1_read_replication: Literal["auto", "disabled"] = "disabled"
    """D1 read replicas: `auto` lets D1 place them around the world. Always sent to Cloudflare,
    since an unset one is a diff after every refresh (issue 11, item 4)."""
    config_version: Annotated[int, Field(ge=1, le=2**53 - 1)] = 1
    """Version of `config`; bump it on every change (the Worker never goes backwards)."""
    config: dict[str, JsonValue] = {}
    """The tenant's business config (not secret): JSON, at most 1 MiB."""
    secret_names: Annotated[list[SecretName], Field(max_length=MAX_SECRETS)] = []
    """Names of the business secrets held under `clawdbot:secrets` (values never here)."""
    limits: Limits | None = None
    relay_key_generation: Annotated[int, Field(ge=1)] = 1
    """Bump to rotate the relay key: every envelope is re-encrypted in the same `up`."""
    allow_apex_catch_all: bool = False
    """Allow a route that catches a whole zone apex (`zone/*` or `*zone/*`); the policy pack checks it."""
    plan: PlanName | None = None
    """Dispatch mode: the platform plan whose limits the dispatcher applies (default: the platform's)."""
    egress: Annotated[list[EgressPattern], Field(max_length=MAX_EGRESS)] = []
    """Dispatch mode: hosts the tenant's Worker may fetch (the outbound Worker refuses the rest)."""
    isolation: Isolation | None = None
    """Overrides the platform's isolation for this tenant (pin `workers` while others move)."""
    keep_account_worker: bool = False
    """Moving to dispatch mode: keep the account Worker, its routes, domains and cron serving until the
    hostnames point at the SaaS zone (docs/dispatch-mode.md); then set it back to false."""

    @field_validator("routes")
    @classmethod
    def _routes_well_formed(cls, routes: list[str]) -> list[str]:
        for index, pattern in enumerate(routes):
            host = route_host(pattern)
            if not _ROUTE_HOST_RE.match(host) or "/" not in pattern:
                raise ValueError(f"[{index}] {pattern!r} is not a route pattern like 'host.example.com/*'")
        if len(set(routes)) != len(routes):
            raise ValueError("route patterns must be unique")
        return routes

    @field_validator("crons")
    @classmethod
    def _crons_valid(cls, crons: list[str]) -> list[str]:
        for index, cron in enumerate(crons):
            try:
                validate_cron(cron)
            except ValueError as exc:
                raise ValueError(f"[{index}] {exc}") from None
        if len(set(crons)) != len(crons):
            raise ValueError("cron schedules must be unique")
        return crons

    @field_validator("secret_names", "custom_domains", "egress")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("entries must be unique")
        return values

    @field_validator("config")
    @classmethod
    def _config_size(cls, config: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(config, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
        except ValueError:
            raise ValueError("holds NaN or infinity, which JSON cannot carry") from None
        if size > MAX_CONFIG_BYTES:
            raise ValueError(f"is {size} bytes of JSON; the limit is {MAX_CONFIG_BYTES}")
        return config

    @model_validator(mode="after")
    def _inside_zone(self) -> TenantSpec:
        for index, pattern in enumerate(self.routes):
            host = route_host(pattern).removeprefix("*").removeprefix(".")
            if not self.zone.contains(host):
                raise FieldError(("routes", index), f"{pattern!r} is outside zone {self.zone.name}")
        for index, domain in enumerate(self.custom_domains):
            if not self.zone.contains(domain):
                raise FieldError(("custom_domains", index), f"{domain!r} is outside zone {self.zone.name}")
        return self

    def hostnames(self) -> list[str]:
        """Concrete hostnames that reach this tenant (wildcard routes excluded)."""
        hosts = [route_host(r) for r in self.routes if not route_host(r).startswith("*")]
        return list(dict.fromkeys([*self.custom_domains, *hosts]))


class PlatformSpec(StrictModel):
    """Fleet-wide settings, under `clawdbot:platform` in `Pulumi.prod.yaml`."""

    account_id: AccountId
    """Cloudflare account that holds every tenant's Worker, KV and D1."""
    environment: Environment = "prod"
    """Part of every account-wide name, so a staging fleet never collides with prod."""
    compatibility_date: CompatibilityDate
    """Default Workers compatibility date (tenants may override)."""
    compatibility_flags: list[CompatibilityFlag] = []
    observability: bool = True
    """Turn on Workers Logs for every tenant script."""
    logs_sampling_rate: Annotated[float, Field(gt=0, le=1)] = 1.0
    isolation: Isolation = "workers"
    """`workers`: an account Worker per tenant (up to 500 scripts). `dispatch`: Workers for Platforms,
    each tenant's Worker a user Worker in the platform's dispatch namespace (reference/scale.md)."""
    plans: dict[PlanName, PlanLimits] = {"standard": PlanLimits(cpu_ms=50, subrequests=50)}
    """Dispatch mode: limits per plan, applied by the dispatcher per call."""
    default_plan: PlanName = "standard"
    saas_zone: Zone | None = None
    """Dispatch mode: the Cloudflare for SaaS zone carrying the `*/*` route to the dispatcher."""
    fallback_origin: Hostname | None = None
    """Dispatch mode: the SaaS zone's fallback origin for custom hostnames (a placeholder record)."""

    @model_validator(mode="after")
    def _plans_consistent(self) -> PlatformSpec:
        if self.default_plan not in self.plans:
            raise FieldError(("default_plan",), f"{self.default_plan!r} is not one of plans ({', '.join(self.plans)})")
        if (self.fallback_origin is None) != (self.saas_zone is None):
            raise FieldError(("fallback_origin",), "saas_zone and fallback_origin go together")
        return self


class FieldError(ValueError):
    """A model-level check that knows which field is at fault (pydantic only knows the model)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def route_host(pattern: str) -> str:
    """The host part of a Workers route pattern (`*.acme.example.com/api/*` → `*.acme.example.com`)."""
    return pattern.split("/", 1)[0]


def host_for(routes: Sequence[str], path: str) -> str | None:
    """A concrete hostname whose route reaches `path` (as Cloudflare matches routes), if any."""
    for route in routes:
        host, _, route_path = route.partition("/")
        prefix = "/" + route_path
        if host.startswith("*"):
            continue
        if (prefix.endswith("*") and path.startswith(prefix[:-1])) or path == prefix:
            return host
    return None


def fleet_prefix(environment: str) -> str:
    """`clawdbot-<env>`: the start of every account-wide name the fleet owns."""
    return f"{NAME_PREFIX}-{environment}"


def resource_prefix(platform: PlatformSpec, tenant_id: str) -> str:
    """`clawdbot-<env>-<tenant>`: the name of the tenant's script, KV namespace title and D1 database."""
    return f"{fleet_prefix(platform.environment)}-{tenant_id}"
