"""The fleet index gives the very verdicts of the scan it replaced, on fleets built to be awkward.

`FleetIndex` answers "what does this tenant's zone, route or domain reach of the others" by
lookups over a name's suffixes instead of a scan of every tenant (O(N) for a fleet check instead
of O(N^2)). The scan below is the rule as it was before the index, kept verbatim as the oracle:
for every tenant of many random fleets (nested and repeated zones, shared zone ids, wildcards of
every shape, claims outside their zone, case and trailing dots, no zone at all) the index must
give the same conflicts, in the same order, with the same reasons.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.offline.policy_pack import load_pack

load_pack()
hostnames = importlib.import_module("clawdbot_policies.hostnames")
if TYPE_CHECKING:
    from clawdbot_policies.hostnames import Conflict, Hosts, TenantHosts, _inside, within_zone, zone_hosts
else:
    Conflict, Hosts, TenantHosts = hostnames.Conflict, hostnames.Hosts, hostnames.TenantHosts
    _inside, within_zone, zone_hosts = hostnames._inside, hostnames.within_zone, hostnames.zone_hosts


# --- the scan, as policies/clawdbot_policies/hostnames.py had it (commit 655aed1) -------------------
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


def scan_conflicts(candidate: TenantHosts, fleet: Iterable[TenantHosts]) -> list[Conflict]:
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


def _meets(mine: Sequence[Hosts], theirs: Sequence[Hosts]) -> list[Hosts]:
    return [both for a in mine for b in theirs if (both := a.meet(b)) is not None]


# --- random fleets -------------------------------------------------------------------------------

LABELS = ["a", "b", "shop", "ex", "xn--bcher-kva", "B\u00fccher"]


def _name(rng: random.Random, depth: int) -> str:
    return ".".join(rng.choice(LABELS) for _ in range(depth)) + ".test"


def _pattern(rng: random.Random, zone: str | None) -> str:
    base = zone or _name(rng, rng.randint(1, 3))
    shapes = [
        base,
        f"{rng.choice(LABELS)}.{base}",
        f"*.{base}",
        f"*{base}",
        f"*{rng.choice(LABELS)}.{base}",
        _name(rng, rng.randint(1, 4)),
        f"*.{_name(rng, rng.randint(1, 2))}",
        "*",
        "*.",
        f"{base.upper()}.",
        f"https://{base}",
    ]
    host = rng.choice(shapes)
    return host + rng.choice(["/*", "/api/*", "", ":8443/*"])


def random_fleet(rng: random.Random, size: int) -> list[Any]:
    zones = [_name(rng, rng.randint(1, 3)) for _ in range(max(1, size // 2))]
    fleet = []
    for index in range(size):
        zone = rng.choice([*zones, None]) if rng.random() < 0.9 else None
        zone_id = rng.choice(["z1", "z2", f"id{index}", None, f"id{index}"])
        routes = [_pattern(rng, zone) for _ in range(rng.randint(0, 3))]
        domains = [_pattern(rng, zone).split("/")[0].lstrip("*.") for _ in range(rng.randint(0, 2))]
        if zone is not None and rng.random() < 0.2:
            zone = zone.upper() + "."
        fleet.append(hostnames.tenant_hosts(f"t{index}", zone, zone_id, routes, domains))
    return fleet


@pytest.mark.parametrize("seed", range(60))
def test_index_gives_the_scans_verdicts(seed: int) -> None:
    rng = random.Random(seed)
    fleet = random_fleet(rng, rng.randint(2, 24))
    index = hostnames.FleetIndex(fleet)
    for tenant in fleet:
        expected = scan_conflicts(tenant, fleet)
        assert index.conflicts(tenant) == expected, tenant
        assert hostnames.conflicts(tenant, fleet) == expected, tenant
    expected_fleet = {t.tenant: found for t in fleet if (found := scan_conflicts(t, fleet))}
    assert hostnames.fleet_conflicts(fleet) == expected_fleet


@pytest.mark.parametrize("seed", range(20))
def test_a_candidate_the_fleet_holds_differently_is_checked_as_it_is(seed: int) -> None:
    """The policy pack checks a stack's own resources against the registry's view of the fleet;
    the index must then use the candidate as given, not its fleet entry."""
    rng = random.Random(1000 + seed)
    fleet = random_fleet(rng, rng.randint(2, 16))
    changed = random_fleet(rng, len(fleet))
    index = hostnames.FleetIndex(fleet)
    for mine, theirs in zip(fleet, changed, strict=True):
        candidate = TenantHosts(mine.tenant, theirs.zone_name, theirs.zone_id, theirs.claims)
        assert index.conflicts(candidate) == scan_conflicts(candidate, fleet)
        newcomer = TenantHosts("newcomer", theirs.zone_name, theirs.zone_id, theirs.claims)
        assert index.conflicts(newcomer) == scan_conflicts(newcomer, fleet)


def test_random_fleets_do_conflict() -> None:
    """The generator is worth something only if its fleets hit every kind of verdict."""
    reasons = " ".join(
        c.reason
        for seed in range(60)
        for fleet in [random_fleet(random.Random(seed), random.Random(seed).randint(2, 24))]
        for t in fleet
        for c in scan_conflicts(t, fleet)
    )
    for words in (
        "is also declared by",
        "lies inside zone",
        "contains zone",
        "which belongs to tenant",
        "which tenant",
    ):
        assert words in reasons, words
