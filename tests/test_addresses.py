"""`core.addresses.is_loopback` under hostile input, and its three callers following it.

The callers allow something only where it says True: `serve` binds without `--expose`
(server/serve.check_bind, the host as given to `--host`), and the R2 state backend and the backups
accept a plain-http endpoint (config/state_backend, backup/store.checked_endpoint, a URL's
`hostname`: lower-cased, brackets and port removed, percent-escapes kept). A wrong True sends
tokens or state over a network in the clear; a wrong False costs one clear error. So: True only for
`localhost` and literal loopback addresses; every other spelling is refused.
"""

from __future__ import annotations

import pytest

from orchestrator.backup.errors import BackupError
from orchestrator.backup.store import checked_endpoint
from orchestrator.config.state_backend import parse_state_backend
from orchestrator.core.addresses import is_loopback
from orchestrator.core.errors import EdgeError
from orchestrator.server.serve import check_bind

LOOPBACK = [
    "localhost",
    "127.0.0.1",
    "127.8.9.10",
    "127.255.255.254",
    "127.0.0.0",  # 127.0.0.0/8 as a whole is loopback (RFC 1122 3.2.1.3)
    "::1",
    "0:0:0:0:0:0:0:1",
    "::0001",
    "0::1",
    # IPv4-mapped: 127.0.0.1 on a dual-stack socket. CPython says so only from 3.13 on
    # (python/cpython#117566, "::ffff:127.0.0.0/104 is for all intents and purposes a loopback address").
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:127.1.2.3",
    "::1%lo",  # a zone on ::1 (ipaddress accepts RFC 4007 zones since 3.9): still this machine
    "::1%25lo",  # a URL's hostname keeps RFC 6874's %25 escape; the zone is then "25lo", still ::1
]

REFUSED = [
    # another machine, or every interface
    "0.0.0.0",
    "::",
    "10.0.0.5",
    "128.0.0.1",
    "126.255.255.255",
    "255.255.255.255",
    "vps.example.com",
    "::ffff:10.0.0.1",
    "::ffff:0.0.0.0",
    "::127.0.0.1",  # IPv4-compatible (deprecated, RFC 4291 2.5.5.1): not routed to loopback
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1: goes to the translator, off this machine
    "2002:7f00:1::",  # 6to4
    "fe80::1%lo",  # link-local
    # forms inet_aton (so a resolver) would read as 127.0.0.1; ipaddress refuses them, and so do we
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "017.0.0.1",
    "127.000.000.001",
    "127.0.0.01",
    # names that a resolver decides about
    "localhost.",
    "LOCALHOST",
    "Localhost",
    "localhost.localdomain",
    "127.0.0.1.nip.io",
    "localhost\x00",
    "loc\u0430lhost",  # Cyrillic a
    # spellings no caller passes: a URL's hostname has no brackets, and --host takes a bare address
    "[::1]",
    "[127.0.0.1]",
    "::1/128",
    "127.0.0.1/8",
    "127.0.0.1:80",
    "127.0.0.1%lo",  # IPv4 has no zones
    "::1%",
    "::ffff:127.0.0.1%",
    # empty, blank, control characters, unicode digits, sheer size
    "",
    " ",
    " 127.0.0.1",
    "127.0.0.1 ",
    "127.0.0.1\n",
    "127.0.0.1\x00evil.example",
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth digits: an IDNA name to a resolver
    "127.0.0.\u0661",  # Arabic-Indic one
    "::\uff11",
    "1" * 100_000,
    "1." * 50_000,
    ":" * 10_000 + "1",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host) is True


@pytest.mark.parametrize("host", REFUSED)
def test_everything_else_is_refused(host: str) -> None:
    assert is_loopback(host) is False


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "localhost"])
def test_serve_binds_a_loopback_host_without_expose(host: str) -> None:
    assert check_bind(host, 8790, expose=False) is None


@pytest.mark.parametrize("host", ["127.1", "0x7f.0.0.1", "localhost.", "[::1]", "::ffff:10.0.0.1", ""])
def test_serve_refuses_every_other_spelling_without_expose(host: str) -> None:
    with pytest.raises(EdgeError, match="which is not a loopback address"):
        check_bind(host, 8790, expose=False)


# (URL host part, allowed over plain http): what urlsplit makes of it is what is_loopback judges.
URL_HOSTS = [
    ("127.0.0.1:9000", True),
    ("LOCALHOST:9000", True),  # urlsplit lower-cases the hostname: localhost
    ("[::1]:9000", True),
    ("[::ffff:127.0.0.1]:9000", True),
    ("127.1:9000", False),
    ("0x7f.0.0.1:9000", False),
    ("localhost.:9000", False),
    ("[::ffff:10.0.0.1]:9000", False),
    ("10.0.0.5:9000", False),
]


@pytest.mark.parametrize(("host", "allowed"), URL_HOSTS)
def test_backups_allow_plain_http_only_to_loopback(host: str, allowed: bool) -> None:
    endpoint = f"http://{host}"
    if allowed:
        assert checked_endpoint(endpoint) == endpoint
    else:
        with pytest.raises(BackupError, match="plain http only to a loopback address"):
            checked_endpoint(endpoint)


@pytest.mark.parametrize(("host", "allowed"), URL_HOSTS)
def test_the_state_backend_allows_plain_http_only_to_loopback(host: str, allowed: bool) -> None:
    url = f"s3://local-test?endpoint=http://{host}&s3ForcePathStyle=true&region=us-east-1"
    if allowed:
        assert parse_state_backend(url).kind == "s3"
    else:
        with pytest.raises(ValueError, match="is plain http"):
            parse_state_backend(url)
