"""Who owns a hostname across the fleet: the one copy of the rule, pure and standard-library only.

The pack's `hostname-ownership` policy and the orchestrator (`plan`, `tenants add`, the local edge)
all ask this module, so a route the pack refuses is one `plan` refuses too.

How Cloudflare matches (developers.cloudflare.com/workers/configuration/routing/routes): a route
pattern's only operator is `*`, matching any characters, allowed at the start of the host and the
end of the path; a pattern applies only to requests of the zone it is attached to; the most
specific route wins, and a custom domain takes every request for its hostname. So a path never
separates two tenants (a more specific path wins the host), and hosts are compared as sets:
`shop.acme.example.com` is one host, `*.acme.example.com` every name ending in `.acme.example.com`,
`*acme.example.com` every name ending in `acme.example.com` (clipped to the route's zone).

Ownership: a host belongs to the tenant whose zone is the most specific zone containing it (a
delegated sub-zone outranks its parent, as in DNS). A zone belongs to one tenant. A tenant's route
or custom domain is refused when it reaches a host owned by another tenant, and - where no zone
decides (the same zone declared twice, or a claim outside every zone) - when it reaches a host
another tenant's claim reaches. Host names compare case-blind, without a trailing dot, and with
internationalised labels in their punycode (`xn--`) form.
"""

from __future__ import annotations

import encodings.idna
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _ascii_label(label: str) -> str:
    if label.isascii():
        return label.lower()
    try:
        return encodings.idna.ToASCII(label).decode("ascii").lower()
    except UnicodeError:
        return label.lower()  # not a valid IDN label: compared as written


_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
"""Full stops IDNA reads as label separators (RFC 3490 section 3.1)."""
_PORT = re.compile(r":\d+$")


def normalize_host(host: str) -> str:
    """`Shop.ACME.example.com.` -> `shop.acme.example.com`; `bücher.de` -> `xn--bcher-kva.de`;
    a `:port` is dropped (a route pattern matches the host whatever the port)."""
    host = _PORT.sub("", host.strip().translate(_IDNA_DOTS)).rstrip(".")
    return ".".join(_ascii_label(label) for label in host.split("."))


@dataclass(frozen=True)
class Hosts:
    """One exact host (`exact`), or every name ending in `suffix` (`.x` for `*.x`, `x` for `*x`)."""

    text: str
    exact: bool

    def contains(self, host: str) -> bool:
        return host == self.text if self.exact else host.endswith(self.text)

    def within(self, other: Hosts) -> bool:
        """Every host of self is one of other's."""
        return other.contains(self.text) if self.exact or not other.exact else False

    def meet(self, other: Hosts) -> Hosts | None:
        """The hosts in both, or None."""
        if self.exact:
            return self if other.contains(self.text) else None
        if other.exact:
            return other if self.contains(other.text) else None
        longer, shorter = sorted((self, other), key=lambda h: len(h.text), reverse=True)
        return longer if longer.text.endswith(shorter.text) else None

    def show(self) -> str:
        return self.text if self.exact else "*" + self.text


def route_hosts(pattern: str) -> Hosts:
    """The hosts a Workers route pattern (`[scheme://]host[/path]`) can match."""
    host = _SCHEME.sub("", pattern.strip()).split("/", 1)[0]
    if not host.startswith("*"):
        return Hosts(normalize_host(host), exact=True)
    rest = host[1:]
    dot = "." if rest.startswith(".") else ""
    return Hosts(dot + normalize_host(rest.removeprefix(".")) if rest.strip(".") else dot, exact=False)


def domain_hosts(hostname: str) -> Hosts:
    return Hosts(normalize_host(hostname), exact=True)


@lru_cache(maxsize=65536)
def zone_hosts(zone: str) -> tuple[Hosts, Hosts]:
    """A zone's apex and every name under it (cached: a fleet check asks for every zone N times)."""
    return Hosts(zone, exact=True), Hosts("." + zone, exact=False)


@dataclass(frozen=True)
class Claim:
    """A route or custom domain of a tenant; `where` is the caller's name for it (a key path, a resource)."""

    where: str
    kind: str
    """`route` or `custom domain`."""
    value: str
    hosts: Hosts

    @classmethod
    def route(cls, where: str, pattern: str) -> Claim:
        return cls(where, "route", pattern, route_hosts(pattern))

    @classmethod
    def domain(cls, where: str, hostname: str) -> Claim:
        return cls(where, "custom domain", hostname, domain_hosts(hostname))

    def label(self) -> str:
        return f"{self.kind} {self.value!r}"


@dataclass(frozen=True)
class TenantHosts:
    tenant: str
    zone_name: str | None
    zone_id: str | None
    claims: tuple[Claim, ...] = ()

    @cached_property
    def zone(self) -> str | None:
        # Cached: checking a fleet of N asks each tenant for its zone O(N) times.
        return normalize_host(self.zone_name) if self.zone_name else None

    def reach(self, claim: Claim) -> list[Hosts]:
        """The hosts a claim can serve: clipped to the tenant's zone (a route applies to its zone's
        requests only), or as written when it lies outside the zone."""
        return list(_reach(self.zone, claim.hosts))


@lru_cache(maxsize=65536)
def _reach(zone: str | None, hosts: Hosts) -> tuple[Hosts, ...]:
    if zone is None:
        return (hosts,)
    clipped = tuple(m for z in zone_hosts(zone) if (m := hosts.meet(z)) is not None)
    return clipped or (hosts,)


@dataclass(frozen=True)
class Conflict:
    where: str
    """The candidate's entry at fault: `zone` or a claim's `where`."""
    owner: str
    """The other tenant."""
    reason: str
    """One line that names the other tenant."""


def within_zone(host: str, zone: str) -> bool:
    """`host` is `zone` or a name under it (both normalised)."""
    return host == zone or host.endswith("." + zone)


@dataclass(frozen=True)
class _Zones:
    owners: Mapping[str, frozenset[str]]
    """Normalised zone name -> the tenants declaring it."""

    def deepest(self, hosts: Hosts) -> str | None:
        """The most specific zone holding every host of `hosts`."""
        best: str | None = None
        for zone in self.owners:
            if any(hosts.within(z) for z in zone_hosts(zone)) and (best is None or len(zone) > len(best)):
                best = zone
        return best

    def regions(self, hosts: Hosts) -> list[str | None]:
        """Every zone that is the most specific one for some host of `hosts` (None: hosts in no zone)."""
        top = self.deepest(hosts)
        if hosts.exact:
            return [top]
        deeper = [
            z
            for z in self.owners
            if z != top
            and (top is None or within_zone(z, top))
            and any(hosts.meet(part) is not None for part in zone_hosts(z))
        ]
        return [top, *sorted(deeper)]

    def contested(self, zone: str) -> bool:
        """Whether tenants disagree on `zone`: two declare it, or another's zone nests with it."""
        holders = self.owners[zone]
        return len(holders) > 1 or any(_nested(zone, z) and self.owners[z] != holders for z in self.owners)

    def owned(self, hosts: Hosts) -> list[tuple[str, str]]:
        """(zone, tenant) for every uncontested zone that owns some host of `hosts`."""
        zones = [z for z in self.regions(hosts) if z is not None and not self.contested(z)]
        return [(z, t) for z in zones for t in sorted(self.owners[z])]

    def undecided(self, hosts: Hosts) -> bool:
        """No zone gives some of these hosts to one tenant: they lie in no zone, or in a contested one."""
        return any(z is None or self.contested(z) for z in self.regions(hosts))


def _nested(a: str, b: str) -> bool:
    return a != b and (within_zone(a, b) or within_zone(b, a))


def _zone_conflict(mine: TenantHosts, other: TenantHosts) -> str | None:
    zone, theirs = mine.zone, other.zone
    if mine.zone_id and mine.zone_id == other.zone_id:
        return f"zone id {mine.zone_id} is also declared by tenant {other.tenant}; a zone belongs to one tenant"
    if zone is None or theirs is None:
        return None
    if zone == theirs:
        return f"zone {zone} is also declared by tenant {other.tenant}; a zone belongs to one tenant"
    nest = "one tenant's zone may not nest in another's"
    if within_zone(zone, theirs):
        return f"zone {zone} lies inside zone {theirs} of tenant {other.tenant}; {nest}"
    if within_zone(theirs, zone):
        return f"zone {zone} contains zone {theirs} of tenant {other.tenant}; {nest}"
    return None


def conflicts(candidate: TenantHosts, fleet: Iterable[TenantHosts]) -> list[Conflict]:
    """Why `candidate`'s zone, routes and custom domains reach what another tenant of `fleet` owns.

    `fleet` may include the candidate itself (it is skipped by tenant id). One conflict per
    (entry, other tenant), claims in their order, zone first.
    """
    others = [t for t in fleet if t.tenant != candidate.tenant]
    owners: dict[str, set[str]] = {}
    for tenant in [candidate, *others]:
        if tenant.zone:
            owners.setdefault(tenant.zone, set()).add(tenant.tenant)
    zones = _Zones({z: frozenset(t) for z, t in owners.items()})
    found: dict[tuple[str, str], Conflict] = {}

    def add(where: str, owner: str, reason: str) -> None:
        found.setdefault((where, owner), Conflict(where, owner, reason))

    for other in others:
        if (reason := _zone_conflict(candidate, other)) is not None:
            add("zone", other.tenant, reason)
    for claim in candidate.claims:
        reach = candidate.reach(claim)
        for part in reach:
            for zone, owner in zones.owned(part):
                if owner != candidate.tenant:
                    reason = f"{claim.label()} reaches {_inside(part, zone)} in zone {zone}, which belongs to tenant"
                    add(claim.where, owner, f"{reason} {owner}")
        for other in others:
            for theirs in other.claims:
                for both in _meets(reach, other.reach(theirs)):
                    if zones.undecided(both):
                        reason = f"{claim.label()} reaches {both.show()}, which tenant {other.tenant} serves"
                        add(claim.where, other.tenant, f"{reason} ({theirs.label()})")
    return list(found.values())


def _inside(hosts: Hosts, zone: str) -> str:
    """The part of `hosts` inside `zone`, for a message."""
    inside = [m for z in zone_hosts(zone) if (m := hosts.meet(z)) is not None]
    return " and ".join(m.show() for m in inside) or hosts.show()


def _meets(mine: Sequence[Hosts], theirs: Sequence[Hosts]) -> list[Hosts]:
    return [both for a in mine for b in theirs if (both := a.meet(b)) is not None]


def fleet_conflicts(fleet: Sequence[TenantHosts]) -> dict[str, list[Conflict]]:
    """Every tenant's conflicts with the rest of the fleet (tenants without any left out)."""
    result = {tenant.tenant: conflicts(tenant, fleet) for tenant in fleet}
    return {tenant: found for tenant, found in result.items() if found}


FLEET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Every tenant's zone, routes and custom domains: tenant id -> {zoneId, zoneName, routes, "
        "customDomains}; `python -m orchestrator policy fleet-config` writes it from the registry."
    ),
    "additionalProperties": {
        "type": "object",
        "properties": {
            "zoneId": {"type": "string"},
            "zoneName": {"type": "string"},
            "routes": {"type": "array", "items": {"type": "string"}},
            "customDomains": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["zoneName"],
        "additionalProperties": False,
    },
}
"""The JSON form of a fleet (policy config of `hostname-ownership`)."""


def tenant_hosts(
    tenant: str, zone_name: str | None, zone_id: str | None, routes: Sequence[str], custom_domains: Sequence[str]
) -> TenantHosts:
    """A tenant as its stack file declares it; claims are named by their key path (`routes[0]`)."""
    claims = [Claim.route(f"routes[{i}]", r) for i, r in enumerate(routes)]
    claims += [Claim.domain(f"custom_domains[{i}]", d) for i, d in enumerate(custom_domains)]
    return TenantHosts(tenant, zone_name, zone_id, tuple(claims))


def fleet_to_json(fleet: Iterable[TenantHosts]) -> dict[str, dict[str, Any]]:
    document: dict[str, dict[str, Any]] = {}
    for tenant in sorted(fleet, key=lambda t: t.tenant):
        entry: dict[str, Any] = {"zoneName": tenant.zone_name or ""}
        if tenant.zone_id:
            entry["zoneId"] = tenant.zone_id
        entry["routes"] = [c.value for c in tenant.claims if c.kind == "route"]
        entry["customDomains"] = [c.value for c in tenant.claims if c.kind == "custom domain"]
        document[tenant.tenant] = entry
    return document


def fleet_from_json(document: Mapping[str, Any]) -> list[TenantHosts]:
    """The inverse of `fleet_to_json`; malformed entries are skipped (the config schema refuses them)."""
    fleet: list[TenantHosts] = []
    for tenant, entry in document.items():
        if not isinstance(entry, Mapping):
            continue
        strings = {k: [v for v in _seq(entry.get(k)) if isinstance(v, str)] for k in ("routes", "customDomains")}
        zone_name, zone_id = entry.get("zoneName"), entry.get("zoneId")
        fleet.append(
            tenant_hosts(
                str(tenant),
                zone_name if isinstance(zone_name, str) and zone_name else None,
                zone_id if isinstance(zone_id, str) and zone_id else None,
                strings["routes"],
                strings["customDomains"],
            )
        )
    return fleet


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()
