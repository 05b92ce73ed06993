"""Control-room load: 200 requests/s on /api/status against 200 tenants, with and without 50 SSE clients.

One `python -m orchestrator serve` process (a real uvicorn, loopback only) over a scratch project
of synthetic tenants. Each repeat runs two phases side by side, in alternating order: the same
open-loop request rate alone, then with the event-stream clients connected while stack files
change every second (so the watcher publishes and every client receives). Reported: latency
p50/p99 per phase (min and median over repeats), the p99 ratio with/without streams, SSE events
delivered per client, and the server's RSS (idle, peak, per SSE client). Bounded in count and time.

    .venv/bin/python -m bench.control_room [--tenants 200] [--rate 200] [--sse 50] [--seconds 5] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrator.config.stack_file import set_value
from orchestrator.core.contract import REPO_ROOT
from orchestrator.local_edge.process import rss_bytes
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant, write_passphrase_file
from orchestrator.server.tokens import TokenStore

MIB = 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Client:
    """HTTP/1.1 keep-alive GETs on one connection (the load must not measure connection set-up)."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        await self.reader.readexactly(length)
        return status


async def load(port: int, token: str, rate: float, seconds: float, pool: int = 16) -> dict[str, float]:
    """Open loop: a request every 1/rate s whatever the answers do; latency counts the wait for a connection."""
    clients: asyncio.Queue[Client] = asyncio.Queue()
    for _ in range(pool):
        clients.put_nowait(Client(port, token))
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        client = await clients.get()
        try:
            status = await client.get("/api/status")
            if status != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            client = Client(port, token)
        finally:
            clients.put_nowait(client)
        latencies.append(time.perf_counter() - scheduled)

    start = time.perf_counter()
    tasks = []
    n = int(rate * seconds)
    for i in range(n):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": n,
        "achieved_rps": n / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


async def sse_client(
    port: int, token: str, counts: list[int], hellos: list[int], index: int, stop: asyncio.Event
) -> None:
    # The hello frame carries the whole picture on one line (200 tenants: well over 64 KiB).
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    writer.write(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    await writer.drain()
    while not stop.is_set():
        try:
            line = await asyncio.wait_for(reader.readline(), 0.5)
        except TimeoutError:
            continue
        if not line:
            break
        if line.startswith(b"event: tenant"):
            counts[index] += 1
        elif line.startswith(b"event: hello"):
            hellos[index] = 1
    writer.close()


VERSIONS = iter(range(2, 10**9))
"""config_version values, increasing across every phase, so each write is a real change."""


async def churn(project: Path, tenants: int, stop: asyncio.Event) -> int:
    """Bump one tenant's config_version per second: the watcher sees it and publishes to every client."""
    changes = 0
    while not stop.is_set():
        version = next(VERSIONS)
        path = project / f"Pulumi.prod.t{version % tenants:03d}.yaml"
        await asyncio.to_thread(set_value, path, "clawdbot:tenant.config_version", version)
        changes += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    return changes


async def with_streams(port: int, token: str, args: argparse.Namespace, project: Path, pid: int) -> dict[str, Any]:
    stop = asyncio.Event()
    counts = [0] * args.sse
    hellos = [0] * args.sse
    streams = [asyncio.create_task(sse_client(port, token, counts, hellos, i, stop)) for i in range(args.sse)]
    deadline = time.monotonic() + 30
    while sum(hellos) < args.sse and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    connected_rss = rss_bytes(pid) or 0
    changer = asyncio.create_task(churn(project, args.tenants, stop))
    result = await load(port, token, args.rate, args.seconds)
    await asyncio.sleep(1.5)  # the last change's event reaches everyone
    peak = rss_bytes(pid) or 0
    stop.set()
    changes = await changer
    await asyncio.gather(*streams)
    return {
        **result,
        "sse_clients": args.sse,
        "changes": changes,
        "connected": sum(hellos),
        "events_per_client_min": min(counts),
        "events_per_client_max": max(counts),
        "rss_connected": connected_rss,
        "rss_peak": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s on /api/status")
    parser.add_argument("--sse", type=int, default=50, help="event-stream clients in the second phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one phase")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="control-room-bench-") as tmp:
        root = Path(tmp)
        scratch = ScratchProject(root / "project", write_passphrase_file(root / "passphrase"), source=REPO_ROOT)
        for index in range(args.tenants):
            scratch.add_tenant(synthetic_tenant(index))
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "CLAWDBOT_PROJECT_DIR": str(scratch.root),
            "CLAWDBOT_AUDIT_LOG": str(root / "data" / "audit.jsonl"),
            "CLAWDBOT_STATE_DIR": str(root / "state"),
            "CLAWDBOT_WORK_ROOT": str(root / "work"),
            "CLAWDBOT_LOCAL_EDGE_DIR": str(root / "local-edge"),
            "CLAWDBOT_PASSPHRASE_FILE": str(root / "passphrase"),
        }
        token = TokenStore(root / "data" / "serve-tokens.json").add("bench")
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "serve",
                "--port",
                str(port),
                "--health",
                "remote",
                "--watch-interval",
                "0.5",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=root,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the control room did not start") from None
                    time.sleep(0.2)
            asyncio.run(load(port, token, 50, 1.0))  # warm-up
            idle = rss_bytes(server.pid) or 0
            runs: dict[str, list[dict[str, Any]]] = {"alone": [], "with_sse": []}
            for rep in range(args.repeat):
                order = ("alone", "with_sse") if rep % 2 == 0 else ("with_sse", "alone")
                for phase in order:
                    if phase == "alone":
                        runs["alone"].append(asyncio.run(load(port, token, args.rate, args.seconds)))
                    else:
                        runs["with_sse"].append(asyncio.run(with_streams(port, token, args, scratch.root, server.pid)))
        finally:
            server.terminate()
            server.wait(timeout=30)

    def agg(phase: str, key: str) -> dict[str, float]:
        values = [r[key] for r in runs[phase]]
        return {"min": round(min(values), 2), "median": round(statistics.median(values), 2)}

    peak = max(r["rss_peak"] for r in runs["with_sse"])
    connected = statistics.median(r["rss_connected"] for r in runs["with_sse"])
    result = {
        "tenants": args.tenants,
        "rate_rps": args.rate,
        "sse_clients": args.sse,
        "seconds_per_phase": args.seconds,
        "repeat": args.repeat,
        "alone": {k: agg("alone", k) for k in ("p50_ms", "p99_ms", "achieved_rps", "errors")},
        "with_sse": {
            k: agg("with_sse", k)
            for k in ("p50_ms", "p99_ms", "achieved_rps", "errors", "connected", "events_per_client_min", "changes")
        },
        "p99_ratio_with_sse_vs_alone": round(
            statistics.median(r["p99_ms"] for r in runs["with_sse"])
            / statistics.median(r["p99_ms"] for r in runs["alone"]),
            2,
        ),
        "rss_mib": {
            "idle": round(idle / MIB, 1),
            "peak": round(peak / MIB, 1),
            "per_sse_client_kib": round(max(0.0, connected - idle) / args.sse / 1024, 1),
        },
        "runs": runs,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
