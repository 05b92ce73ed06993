"""The hostname-ownership rule (policies/clawdbot_policies/hostnames.py), case by case.

One table of tenants another tenant must not be able to add next to acme, one of tenants that
may; both run against the same fleet, so a case that should be refused and slips through fails.
"""

from __future__ import annotations

import importlib
from typing import Any

import jsonschema
import pytest

from orchestrator.offline.policy_pack import load_pack

load_pack()  # registers the pack's package under the analyzer's name
hostnames = importlib.import_module("clawdbot_policies.hostnames")

ACME_ZONE_ID = "3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f"
ACME = hostnames.tenant_hosts(
    "acme",
    "acme.example.com",
    ACME_ZONE_ID,
    ["shop.acme.example.com/*", "api.acme.example.com/v1/*"],
    ["edge.acme.example.com"],
)
EVIL_ZONE = ("evil.example.com", "e" * 32)


def evil(
    routes: tuple[str, ...] = (), domains: tuple[str, ...] = (), zone: tuple[str | None, str | None] = EVIL_ZONE
) -> Any:
    return hostnames.tenant_hosts("evil", zone[0], zone[1], list(routes), list(domains))


REFUSED: dict[str, tuple[Any, str, str]] = {
    # name: (candidate, entry at fault, words the reason must carry)
    "same pattern": (evil(("shop.acme.example.com/*",)), "routes[0]", "zone acme.example.com"),
    "more specific path": (evil(("shop.acme.example.com/webhooks",)), "routes[0]", "shop.acme.example.com"),
    "health path": (evil(("shop.acme.example.com/_edge/health",)), "routes[0]", "shop.acme.example.com"),
    "exact path only": (evil(("api.acme.example.com/v2",)), "routes[0]", "api.acme.example.com"),
    "custom domain on a routed host": (evil(domains=("shop.acme.example.com",)), "custom_domains[0]", "shop."),
    "route on a custom domain": (evil(("edge.acme.example.com/*",)), "routes[0]", "edge.acme.example.com"),
    "custom domain on a custom domain": (evil(domains=("edge.acme.example.com",)), "custom_domains[0]", "edge."),
    "unclaimed host of the zone": (evil(("new.acme.example.com/*",)), "routes[0]", "zone acme.example.com"),
    "zone apex": (evil(domains=("acme.example.com",)), "custom_domains[0]", "acme.example.com"),
    "subdomain wildcard": (evil(("*.acme.example.com/*",)), "routes[0]", "*.acme.example.com"),
    "apex wildcard": (evil(("*acme.example.com/*",)), "routes[0]", "acme.example.com"),
    "deeper wildcard": (evil(("*.shop.acme.example.com/*",)), "routes[0]", "*.shop.acme.example.com"),
    "upper case": (evil(("SHOP.Acme.EXAMPLE.com/*",)), "routes[0]", "shop.acme.example.com"),
    "trailing dot": (evil(("shop.acme.example.com./*",)), "routes[0]", "shop.acme.example.com"),
    "custom domain trailing dot": (evil(domains=("Edge.Acme.Example.Com.",)), "custom_domains[0]", "edge."),
    "scheme in pattern": (evil(("https://shop.acme.example.com/*",)), "routes[0]", "shop.acme.example.com"),
    "port in pattern": (evil(("shop.acme.example.com:8443/*",)), "routes[0]", "shop.acme.example.com"),
    "ideographic full stops": (evil(("shop\u3002acme\uff0eexample\uff61com/*",)), "routes[0]", "shop.acme."),
    "spaces around": (evil(domains=("  edge.acme.example.com ",)), "custom_domains[0]", "edge.acme.example.com"),
    "second claim at fault": (evil(("evil.example.com/*", "api.acme.example.com/*")), "routes[1]", "api."),
    "zone by name": (evil(zone=("acme.example.com", "e" * 32)), "zone", "zone acme.example.com"),
    "zone by name, case and dot": (evil(zone=("ACME.example.com.", "e" * 32)), "zone", "zone acme.example.com"),
    "zone by id": (evil(zone=("evil.example.com", ACME_ZONE_ID)), "zone", f"zone id {ACME_ZONE_ID}"),
    "zone inside the zone": (evil(zone=("shop.acme.example.com", "e" * 32)), "zone", "lies inside zone"),
    "zone around the zone": (evil(zone=("example.com", "e" * 32)), "zone", "contains zone acme.example.com"),
    "parent-zone wildcard": (
        evil(("*example.com/*",), zone=("example.com", "e" * 32)),
        "routes[0]",
        "tenant acme",
    ),
    "zone taken, path more specific": (
        evil(("shop.acme.example.com/webhooks",), zone=("acme.example.com", "e" * 32)),
        "routes[0]",
        "which tenant acme serves (route 'shop.acme.example.com/*')",
    ),
    "zone taken, custom domain": (
        evil(domains=("edge.acme.example.com",), zone=("acme.example.com", ACME_ZONE_ID)),
        "custom_domains[0]",
        "which tenant acme serves (custom domain 'edge.acme.example.com')",
    ),
}

ALLOWED: dict[str, Any] = {
    "disjoint tenant": hostnames.tenant_hosts(
        "globex", "globex.example.net", "a" * 32, ["shop.globex.example.net/*"], ["edge.globex.example.net"]
    ),
    "own zone, every form": evil(
        ("evil.example.com/*", "*.evil.example.com/*", "*evil.example.com/api/*"), ("x.evil.example.com",)
    ),
    "name ending like acme's": hostnames.tenant_hosts(
        "megaacme", "megaacme.example.com", "b" * 32, ["*megaacme.example.com/*"], []
    ),
    "sibling zone": hostnames.tenant_hosts("acmeorg", "acme.example.org", "c" * 32, ["shop.acme.example.org/*"], []),
    "acme's name inside another zone": evil(("acme.example.com.evil.example.com/*",)),
    "no claims": evil(),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_claim_on_another_tenants_host_is_refused(name: str) -> None:
    candidate, where, words = REFUSED[name]
    found = hostnames.conflicts(candidate, [ACME, candidate])
    assert [c.where for c in found if c.where == where], f"{name}: {where} not refused; got {found}"
    conflict = next(c for c in found if c.where == where)
    assert conflict.owner == "acme"
    assert "tenant acme" in conflict.reason and words in conflict.reason, conflict.reason
    assert "\n" not in conflict.reason
    assert all(c.owner == "acme" for c in found)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_disjoint_tenants_pass(name: str) -> None:
    candidate = ALLOWED[name]
    assert hostnames.conflicts(candidate, [ACME, candidate]) == []
    assert hostnames.conflicts(ACME, [ACME, candidate]) == []


def test_the_whole_happy_fleet_has_no_conflict() -> None:
    fleet = [ACME, *ALLOWED.values()]
    assert hostnames.fleet_conflicts(fleet) == {}


@pytest.mark.parametrize(
    ("wide", "narrow"),
    [
        ("*.shop.example.org/*", "a.shop.example.org/*"),
        ("*shop.example.org/*", "shop.example.org/x"),
        ("*/*", "anything.example.org/*"),
        ("*.example.org/*", "*.a.example.org/*"),
    ],
)
def test_wildcards_overlap_both_ways_where_no_zone_decides(wide: str, narrow: str) -> None:
    # Tenants whose zone the pack does not know: only their claims can be compared.
    one = hostnames.tenant_hosts("one", None, None, [wide], [])
    two = hostnames.tenant_hosts("two", None, None, [narrow], [])
    assert [c.owner for c in hostnames.conflicts(one, [one, two])] == ["two"]
    assert [c.owner for c in hostnames.conflicts(two, [one, two])] == ["one"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("*.shop.example.org/*", "shop.example.org/*"),
        ("*.a.example.org/*", "*.b.example.org/*"),
        ("x.org/*", "y.org/*"),
    ],
)
def test_wildcards_that_cannot_meet_do_not_conflict(a: str, b: str) -> None:
    one = hostnames.tenant_hosts("one", None, None, [a], [])
    two = hostnames.tenant_hosts("two", None, None, [b], [])
    assert hostnames.conflicts(one, [one, two]) == []


def test_internationalised_names_compare_in_punycode() -> None:
    assert hostnames.normalize_host("Bücher.Example.") == "xn--bcher-kva.example"
    owner = hostnames.tenant_hosts("buch", "bücher.example", "d" * 32, ["shop.bücher.example/*"], [])
    intruder = evil(("shop.xn--bcher-kva.example/x",))
    found = hostnames.conflicts(intruder, [owner, intruder])
    assert [(c.where, c.owner) for c in found] == [("routes[0]", "buch")]
    same_zone = evil(zone=("XN--BCHER-KVA.example", "e" * 32))
    assert [c.where for c in hostnames.conflicts(same_zone, [owner, same_zone])] == ["zone"]


def test_one_conflict_per_entry_and_tenant_and_none_for_itself() -> None:
    candidate = evil(("shop.acme.example.com/a", "shop.acme.example.com/b"), zone=("acme.example.com", ACME_ZONE_ID))
    found = hostnames.conflicts(candidate, [ACME, candidate, ACME])
    keys = [(c.where, c.owner) for c in found]
    assert keys == [("zone", "acme"), ("routes[0]", "acme"), ("routes[1]", "acme")]
    assert hostnames.conflicts(ACME, [ACME]) == []


def test_fleet_json_round_trips_and_matches_its_schema() -> None:
    fleet = [ACME, *ALLOWED.values()]
    document = hostnames.fleet_to_json(fleet)
    jsonschema.validate(document, hostnames.FLEET_SCHEMA)
    back = {t.tenant: t for t in hostnames.fleet_from_json(document)}
    assert back["acme"] == ACME
    assert list(document) == sorted(document)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"acme": {"zoneName": "a.example", "route": []}}, hostnames.FLEET_SCHEMA)
