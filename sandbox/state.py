"""What the destinations hold, kept on disk: one JSON file per destination.

Files are loaded at start and written by a debounced writer (at most about once
per ``interval``, and less often when a write is slow, so a large state never
makes the server disk-bound), on shutdown and whenever ``flush`` is called.
Each write goes to a temporary file that replaces the old one, so a crash never
leaves half a file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sandbox.wire import dumps, loads

log = logging.getLogger(__name__)


class Persistent(Protocol):
    name: str

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, data: dict[str, Any]) -> None: ...


class StateStore:
    """Loads, tracks and writes the state files of registered destinations."""

    def __init__(self, directory: Path, interval: float = 1.0) -> None:
        self.directory = Path(directory)
        self.interval = interval
        self._owners: dict[str, Persistent] = {}
        self._dirty: set[str] = set()
        self._generation = 0
        self._written: dict[str, int] = {}
        self._write_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.writes = 0
        self.last_write_seconds = 0.0

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def register(self, owner: Persistent) -> None:
        self._owners[owner.name] = owner

    def load_all(self) -> None:
        """Restore every registered destination from its file, if there is one."""
        for name, owner in self._owners.items():
            path = self.path(name)
            if not path.exists():
                continue
            try:
                data = loads(path.read_bytes())
            except ValueError:
                # Keep the unreadable file for inspection and start that destination empty.
                broken = path.with_suffix(".json.corrupt")
                os.replace(path, broken)
                log.warning("sandbox state %s was not valid JSON; moved to %s", path, broken)
                continue
            owner.restore(data)

    def mark_dirty(self, name: str) -> None:
        self._dirty.add(name)

    def _take_snapshots(self) -> list[tuple[str, int, bytes]]:
        names, self._dirty = sorted(self._dirty), set()
        out = []
        for name in names:
            self._generation += 1
            out.append((name, self._generation, dumps(self._owners[name].snapshot())))
        return out

    def _write(self, payloads: list[tuple[str, int, bytes]]) -> None:
        with self._write_lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            for name, generation, payload in payloads:
                if generation <= self._written.get(name, 0):
                    continue  # a newer snapshot of this destination is already on disk
                path = self.path(name)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_bytes(payload)
                os.replace(tmp, path)
                self._written[name] = generation
                self.writes += 1

    def flush(self) -> None:
        """Write every changed destination now (synchronously)."""
        if self._dirty:
            self._write(self._take_snapshots())

    async def _run(self) -> None:
        pause = self.interval
        while True:
            await asyncio.sleep(pause)
            if not self._dirty:
                pause = self.interval
                continue
            started = time.perf_counter()
            # Snapshots are serialized on the event loop, so each is consistent; only disk I/O is off-loop.
            payloads = self._take_snapshots()
            await asyncio.to_thread(self._write, payloads)
            self.last_write_seconds = time.perf_counter() - started
            pause = max(self.interval, 4 * self.last_write_seconds)

    def start(self) -> None:
        """Start the debounced writer on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sandbox-state-writer")

    async def stop(self) -> None:
        """Stop the writer and write whatever changed since its last pass."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
