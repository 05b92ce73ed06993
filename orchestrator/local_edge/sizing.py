"""How much memory N local tenants need, how much this machine can give, and the refusal when short.

The figures are measured, not guessed (`python -m bench.local_edge_bench`, README "Benchmarks"):
workerd + the node runner hold about 230 MiB with one tenant and grow by about 7 MiB per tenant
(6.9 MiB at 200 tenants, 6.8 in dispatch mode; bare Miniflare pays 5.9 MiB per trivial worker
with its own KV and D1, so most of it is workerd's isolate per Worker). The estimate adds a margin
on top, so a start that passes the check does not run the machine out of memory halfway.

What the machine can give is the smaller of `MemAvailable` (/proc/meminfo: what the kernel can
hand out without swapping, page cache included) and, inside a memory-limited cgroup, the limit
minus what the cgroup uses beyond reclaimable file cache (cgroup v2 `memory.max`,
`memory.current`, `inactive_file` in `memory.stat`; v1 `memory.limit_in_bytes`,
`memory.usage_in_bytes`, `total_inactive_file`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.local_edge.errors import LocalEdgeError

MIB = 2**20
BASE_MIB = 256
"""workerd + runner with the fallback and control workers and one tenant (measured 228 MiB)."""
PER_TENANT_MIB = 7.5
"""Growth per tenant (measured 6.9 MiB at 200), with a margin."""
UNLIMITED = 2**60
"""cgroup v1 reports "no limit" as a page-rounded LONG_MAX; anything above this is no limit."""

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def needed_bytes(tenants: int) -> int:
    return int((BASE_MIB + PER_TENANT_MIB * tenants) * MIB)


@dataclass(frozen=True)
class Available:
    bytes: int
    source: str
    """What decided it, for the message: `MemAvailable` or `cgroup limit <x>, <y> in use`."""


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _stat_value(text: str | None, key: str) -> int:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


def mem_available(proc: Path = PROC) -> int | None:
    for line in (_read(proc / "meminfo") or "").splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name == "MemAvailable" and fields and fields[0].isdigit():
            return int(fields[0]) * 1024
    return None


def _cgroup_dirs(proc: Path, root: Path) -> list[tuple[Path, int]]:
    """(directory, version) of this process's memory cgroup: the named path when mounted, else the mount root
    (inside a cgroup namespace the named path is relative to a root we see as the mount itself)."""
    found: list[tuple[Path, int]] = []
    for line in (_read(proc / "self" / "cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            base, version = root, 2
        elif "memory" in controllers.split(","):
            base, version = root / "memory", 1
        else:
            continue
        named = base / path.lstrip("/")
        for candidate in (named, base):
            if candidate.is_dir():
                found.append((candidate, version))
                break
    return found


def cgroup_headroom(proc: Path = PROC, root: Path = CGROUP_ROOT) -> tuple[int, int, int] | None:
    """(limit, in use, headroom) of the tightest memory-limited cgroup of this process, or None."""
    best: tuple[int, int, int] | None = None
    for directory, version in _cgroup_dirs(proc, root):
        if version == 2:
            limit_text, usage_text = _read(directory / "memory.max"), _read(directory / "memory.current")
            inactive = _stat_value(_read(directory / "memory.stat"), "inactive_file")
        else:
            limit_text, usage_text = (
                _read(directory / "memory.limit_in_bytes"),
                _read(directory / "memory.usage_in_bytes"),
            )
            inactive = _stat_value(_read(directory / "memory.stat"), "total_inactive_file")
        limit_s, usage_s = (limit_text or "").strip(), (usage_text or "").strip()
        if not limit_s.isdigit() or not usage_s.isdigit() or int(limit_s) >= UNLIMITED:
            continue  # "max", unreadable or unlimited
        limit, used = int(limit_s), max(0, int(usage_s) - inactive)
        entry = (limit, used, max(0, limit - used))
        if best is None or entry[2] < best[2]:
            best = entry
    return best


def available(proc: Path = PROC, root: Path = CGROUP_ROOT) -> Available | None:
    """What this machine can give the local edge, or None when it cannot tell (not Linux)."""
    free = mem_available(proc)
    cgroup = cgroup_headroom(proc, root)
    options: list[Available] = []
    if free is not None:
        options.append(Available(free, f"MemAvailable {gib(free)}"))
    if cgroup is not None:
        limit, used, headroom = cgroup
        options.append(Available(headroom, f"cgroup memory limit {gib(limit)}, {gib(used)} in use"))
    return min(options, key=lambda a: a.bytes) if options else None


def gib(value: int) -> str:
    return f"{value / 2**30:.1f} GiB"


def check_memory(
    tenants: int, *, measure: Callable[[], Available | None] | None = None, say: Callable[[str], None] | None = None
) -> None:
    """Refuse, before anything starts, a local edge this machine has no memory for (default: `available()`)."""
    need = needed_bytes(tenants)
    have = (measure or available)()
    if have is None:
        if say:
            say(f"{tenants} tenant(s) need about {gib(need)}; cannot tell how much memory is free here")
        return
    if say:
        say(f"{tenants} tenant(s) need about {gib(need)}; {gib(have.bytes)} available ({have.source})")
    if need > have.bytes:
        fits = max(0, int((have.bytes / MIB - BASE_MIB) / PER_TENANT_MIB))
        raise LocalEdgeError(
            f"not enough memory for {tenants} local tenant(s): they need about {gib(need)} "
            f"({BASE_MIB} MiB + {PER_TENANT_MIB:g} MiB per tenant for workerd and the node runner) "
            f"but {gib(have.bytes)} is available ({have.source}); about {fits} would fit. "
            "Start fewer tenants (`local up TENANT ...`), free memory, or pass --no-memory-check to try anyway"
        )
