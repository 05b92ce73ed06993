"""`local up --port` with the port taken: one `Error:` line, before any tenant is rendered or decrypted.

workerd itself reports a taken port as a 20-line stack trace in the runtime log, and only after
every tenant was rendered and its secrets decrypted (a PBKDF2 derivation per stack file).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from orchestrator.local_edge import LocalEdge, LocalEdgeError, PreparedTenant
from orchestrator.local_edge.listen import check_listenable


@pytest.fixture
def taken() -> Iterator[int]:
    """A port some other process listens on (here: this test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _local_up(env: dict[str, str], tmp_path: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    # A tenant that cannot render and secrets nobody can decrypt: if `up` reached either, the
    # error would be about them, not the port.
    project = Path(env["CLAWDBOT_PROJECT_DIR"])
    (project / "Pulumi.prod.broken.yaml").write_text("config:\n  clawdbot:tenant: {id: broken}\n")
    env = {
        **env,
        "CLAWDBOT_LOCAL_EDGE_DIR": str(tmp_path / "local-edge"),
        "CLAWDBOT_PASSPHRASE_FILE": str(tmp_path / "no-such-passphrase"),
        "PULUMI_CONFIG_PASSPHRASE": "not the file's content",
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "local", "up", "--port", str(port), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_taken_port_is_one_error_line_before_rendering(cli_env: dict[str, str], tmp_path: Path, taken: int) -> None:
    result = _local_up(cli_env, tmp_path, taken)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"Error: port {taken} on 127.0.0.1 is already in use by another process; "
        "choose another with --port (0 picks a free one) or stop that process"
    ]
    assert result.stdout == ""
    # Nothing was prepared: no relay keys, no runtime log, not even the state directory.
    assert not (tmp_path / "local-edge").exists()


def test_the_library_refuses_a_taken_port_before_spawning(tmp_path: Path, taken: int) -> None:
    edge = LocalEdge(tmp_path / "edge", node="no-such-node-binary")
    # up() looks at nothing but the isolation before the port check; a missing node would be the
    # next error, so reaching the port error proves the order.
    tenant = cast(PreparedTenant, SimpleNamespace(bundle=SimpleNamespace(isolation="workers")))
    with pytest.raises(LocalEdgeError, match=f"port {taken} on 127.0.0.1 is already in use"):
        edge.up([tenant], port=taken)
    assert not edge.layout.log_file.exists()


def test_port_zero_and_a_free_port_pass() -> None:
    check_listenable("127.0.0.1", 0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    check_listenable("127.0.0.1", free)


def test_a_port_held_only_by_a_bound_socket_counts_as_taken() -> None:
    # Bound but not listening yet (a server mid-start) still owns the address.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(LocalEdgeError, match="already in use"):
            check_listenable("127.0.0.1", sock.getsockname()[1])


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback in this environment")
def test_ipv6_loopback_is_checked_too() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::1", 0))
        sock.listen()
        with pytest.raises(LocalEdgeError, match="on ::1 is already in use"):
            check_listenable("::1", sock.getsockname()[1])


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("192.0.2.1", "cannot listen on 192.0.2.1:8787: cannot assign requested address"),  # TEST-NET-1, not ours
        ("no-such-host.invalid", "cannot listen on no-such-host.invalid:8787: "),
    ],
)
def test_an_address_that_is_not_ours_is_one_line(host: str, reason: str) -> None:
    with pytest.raises(LocalEdgeError) as caught:
        check_listenable(host, 8787)
    message = str(caught.value)
    assert message.startswith(reason) and "\n" not in message
