"""Server-Sent Events: one hub, many page clients, each with a bounded queue.

Producers (the watcher thread, job threads) publish from any thread; the hub hands each frame to
the event loop, which fans it out. A frame is encoded once, however many clients listen. A client
that falls `MAX_QUEUE` frames behind loses its backlog and gets one `resync` event instead (it
refetches the whole picture), so a slow phone can never make the server hold unbounded memory.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

MAX_QUEUE = 256
MAX_CLIENTS = 500
KEEPALIVE_S = 15.0
RETRY_MS = 3000


def frame(kind: str, data: Any) -> bytes:
    """One SSE frame; `data` is JSON on one line, so it never needs `data:` continuation lines."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


RESYNC = frame("resync", {})


class TooManyClients(Exception):
    """More than MAX_CLIENTS event streams are open."""


class EventHub:
    def __init__(self, max_queue: int = MAX_QUEUE, max_clients: int = MAX_CLIENTS) -> None:
        self.max_queue = max_queue
        self.max_clients = max_clients
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[bytes]] = set()
        self._lock = threading.Lock()
        self.published = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def clients(self) -> int:
        return len(self._queues)

    def publish(self, kind: str, data: Any) -> None:
        """Thread-safe; a no-op until the server's loop is bound (nobody could be listening)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        encoded = frame(kind, data)
        try:
            loop.call_soon_threadsafe(self._fanout, encoded)
        except RuntimeError:  # the loop closed between the check and the call (shutdown)
            return

    def _fanout(self, encoded: bytes) -> None:
        self.published += 1
        for queue in list(self._queues):
            try:
                queue.put_nowait(encoded)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)

    async def stream(self, hello: Any, keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[bytes]:
        """The frames of one client: `hello` (with the current picture), then events as they come."""
        if len(self._queues) >= self.max_clients:
            raise TooManyClients(f"more than {self.max_clients} event streams are open")
        queue: asyncio.Queue[bytes] = asyncio.Queue(self.max_queue)
        self._queues.add(queue)
        try:
            yield f"retry: {RETRY_MS}\n".encode() + frame("hello", hello)
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield b": keepalive\n\n"  # keeps proxies and tunnels from closing an idle stream
        finally:
            self._queues.discard(queue)
