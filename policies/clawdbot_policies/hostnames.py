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
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


def _after_dots(text: str) -> Iterator[str]:
    """Every `z` with `text.endswith("." + z)`: what follows each dot, longest first."""
    at = text.find(".")
    while at != -1:
        yield text[at + 1 :]
        at = text.find(".", at + 1)


class _Suffixes:
    """Strings, found by what they end with: reversed and sorted, so a suffix is a prefix range."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._reversed = sorted({t[::-1] for t in texts})

    def ending_with(self, suffix: str) -> list[str]:
        key = suffix[::-1]
        start = bisect_left(self._reversed, key)
        stop = bisect_left(self._reversed, key + "\U0010ffff")
        return [r[::-1] for r in self._reversed[start:stop]]


_Part = tuple[int, int, int, Hosts]
"""(fleet position, claim position, position in the claim's reach, hosts) of one tenant's claim."""


class FleetIndex:
    """The fleet, indexed once, so checking every tenant against all the others is O(N), not O(N^2).

    The rule is the one below (`conflicts`); the index only finds, for each question the rule
    asks, the few zones and claims that can answer it (by hash lookups over a name's suffixes and
    by sorted suffix ranges), where a scan would ask every tenant.
    """

    def __init__(self, fleet: Iterable[TenantHosts]) -> None:
        self.fleet = list(fleet)
        owners: dict[str, set[str]] = {}
        self._by_zone: dict[str, list[int]] = {}
        self._by_zone_id: dict[str, list[int]] = {}
        self._exact: dict[str, list[_Part]] = {}
        self._wild: dict[str, list[_Part]] = {}
        for index, tenant in enumerate(self.fleet):
            if tenant.zone:
                owners.setdefault(tenant.zone, set()).add(tenant.tenant)
                self._by_zone.setdefault(tenant.zone, []).append(index)
            if tenant.zone_id:
                self._by_zone_id.setdefault(tenant.zone_id, []).append(index)
            for claim_index, claim in enumerate(tenant.claims):
                for part_index, part in enumerate(tenant.reach(claim)):
                    table = self._exact if part.exact else self._wild
                    table.setdefault(part.text, []).append((index, claim_index, part_index, part))
        self.owners = {z: frozenset(t) for z, t in owners.items()}
        self._zones = _Suffixes(self.owners)
        self._exact_texts = _Suffixes(self._exact)
        self._wild_texts = _Suffixes(self._wild)
        # A zone is contested when two tenants declare it or one with other holders nests with it;
        # every nested pair is some zone and one of its ancestors.
        self._contested = {z for z, holders in self.owners.items() if len(holders) > 1}
        for zone, holders in self.owners.items():
            for above in _after_dots(zone):
                if above in self.owners and self.owners[above] != holders:
                    self._contested |= {zone, above}

    # --- the zones' questions ----------------------------------------------------------------

    def deepest(self, hosts: Hosts) -> str | None:
        """The most specific zone holding every host of `hosts`."""
        holding = [hosts.text] if hosts.exact else []
        return max((z for z in [*holding, *_after_dots(hosts.text)] if z in self.owners), key=len, default=None)

    def regions(self, hosts: Hosts) -> list[str | None]:
        """Every zone that is the most specific one for some host of `hosts` (None: hosts in no zone)."""
        top = self.deepest(hosts)
        if hosts.exact:
            return [top]
        # A zone meets `*s` when its name ends with s, or s is `.` + the zone (its ancestors are top's).
        meeting = set(self._zones.ending_with(hosts.text))
        if hosts.text.startswith(".") and hosts.text[1:] in self.owners:
            meeting.add(hosts.text[1:])
        deeper = [z for z in meeting if z != top and (top is None or within_zone(z, top))]
        return [top, *sorted(deeper)]

    def contested(self, zone: str) -> bool:
        return zone in self._contested

    def owned(self, hosts: Hosts) -> list[tuple[str, str]]:
        """(zone, tenant) for every uncontested zone that owns some host of `hosts`."""
        zones = [z for z in self.regions(hosts) if z is not None and not self.contested(z)]
        return [(z, t) for z in zones for t in sorted(self.owners[z])]

    def undecided(self, hosts: Hosts) -> bool:
        """No zone gives some of these hosts to one tenant: they lie in no zone, or in a contested one."""
        return any(z is None or self.contested(z) for z in self.regions(hosts))

    # --- the claims' question ----------------------------------------------------------------

    def _meeting(self, hosts: Hosts) -> list[_Part]:
        """Every fleet claim part `b` with `hosts.meet(b)` not None."""
        text = hosts.text
        suffixes = [text[i:] for i in range(len(text) + 1)]
        if hosts.exact:
            found = list(self._exact.get(text, ()))
            found += [p for s in suffixes for p in self._wild.get(s, ())]
            return found
        found = [p for t in self._exact_texts.ending_with(text) for p in self._exact[t]]
        wild = set(self._wild_texts.ending_with(text)) | {s for s in suffixes if s in self._wild}
        found += [p for t in wild for p in self._wild[t]]
        return found

    def conflicts(self, candidate: TenantHosts) -> list[Conflict]:
        """`conflicts(candidate, fleet)` for a candidate that is the fleet's own entry for its tenant."""
        mine = [t for t in self.fleet if t.tenant == candidate.tenant]
        if mine != [candidate]:
            # Another version of the candidate (or none) in the fleet: its zone and claims differ.
            return FleetIndex([candidate, *(t for t in self.fleet if t.tenant != candidate.tenant)]).conflicts(
                candidate
            )
        found: dict[tuple[str, str], Conflict] = {}

        def add(where: str, owner: str, reason: str) -> None:
            found.setdefault((where, owner), Conflict(where, owner, reason))

        for other in self._zone_rivals(candidate):
            if (reason := _zone_conflict(candidate, other)) is not None:
                add("zone", other.tenant, reason)
        for claim in candidate.claims:
            reach = candidate.reach(claim)
            for part in reach:
                for zone, owner in self.owned(part):
                    if owner != candidate.tenant:
                        reason = (
                            f"{claim.label()} reaches {_inside(part, zone)} in zone {zone}, which belongs to tenant"
                        )
                        add(claim.where, owner, f"{reason} {owner}")
            # In the order a scan meets them: other tenant, their claim, my part, their part.
            meets = sorted(
                (index, claim_index, mine_index, part_index)
                for mine_index, part in enumerate(reach)
                for index, claim_index, part_index, _ in self._meeting(part)
                if self.fleet[index].tenant != candidate.tenant
            )
            for index, claim_index, mine_index, part_index in meets:
                other = self.fleet[index]
                theirs = other.claims[claim_index]
                both = reach[mine_index].meet(other.reach(theirs)[part_index])
                if both is not None and self.undecided(both):
                    reason = f"{claim.label()} reaches {both.show()}, which tenant {other.tenant} serves"
                    add(claim.where, other.tenant, f"{reason} ({theirs.label()})")
        return list(found.values())

    def _zone_rivals(self, candidate: TenantHosts) -> list[TenantHosts]:
        """The other tenants whose zone id equals the candidate's, or whose zone equals or nests with it."""
        near: set[int] = set(self._by_zone_id.get(candidate.zone_id, ())) if candidate.zone_id else set()
        if (zone := candidate.zone) is not None:
            related = [zone, *_after_dots(zone), *self._zones.ending_with("." + zone)]
            near |= {i for z in related for i in self._by_zone.get(z, ())}
        return [self.fleet[i] for i in sorted(near) if self.fleet[i].tenant != candidate.tenant]


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
    (entry, other tenant), claims in their order, zone first. To check many tenants of one fleet,
    build one `FleetIndex` and ask it for each (`fleet_conflicts`).
    """
    others = [t for t in fleet if t.tenant != candidate.tenant]
    return FleetIndex([candidate, *others]).conflicts(candidate)


def _inside(hosts: Hosts, zone: str) -> str:
    """The part of `hosts` inside `zone`, for a message."""
    inside = [m for z in zone_hosts(zone) if (m := hosts.meet(z)) is not None]
    return " and ".join(m.show() for m in inside) or hosts.show()


def fleet_conflicts(fleet: Sequence[TenantHosts]) -> dict[str, list[Conflict]]:
    """Every tenant's conflicts with the rest of the fleet (tenants without any left out)."""
    index = FleetIndex(fleet)
    result = {tenant.tenant: index.conflicts(tenant) for tenant in fleet}
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
