"""What the process holds, told apart: our threads, executor pools, descriptors, memory.

A thread of ours that outlives its conversation is a leak; a worker that an executor pool starts
lazily is not (a loaded machine overlaps more jobs, so the pool grows), unless it is stuck in a
job. Our threads are named (`realtime_voice …` for the device threads of both backends, aiortc's
`audio-decoder` for each received track), so every thread that is not a pool worker must have
been there before.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures.thread import _threads_queues
from dataclasses import dataclass, field
import gc
import os
from pathlib import Path
import sys
import threading
import time
from typing import Final

POOL_WORKERS_BOUND: Final = 16
"""Workers one executor pool may have. A conversation overlaps a few jobs (two Opus encoders, a
device opening or closing, Home Assistant's own), more on a loaded machine; a pool that grows
past this holds stuck jobs, which `busy_workers` names."""
RSS_GROWTH_BOUND: Final = 24 * 1024 * 1024
"""Bytes RSS may grow after the warm-up (the allocator keeps freed arenas; a leak of 100 kB a
session would be 18 MB over 180 sessions and still pass only just)."""
FD_GROWTH_BOUND: Final = 4
"""Descriptors that may come and go with pooled keep-alive connections."""
SETTLE_SECONDS: Final = 10.0
"""How long pool workers may take to finish the jobs of a conversation that just ended; a job
still running after this is stuck (a device close that never returns, say)."""


def _pool_workers() -> set[threading.Thread]:
    """Return the live worker threads of every executor pool."""
    # The registry concurrent.futures keeps of its workers: the one place that knows them all.
    return {thread for thread in list(_threads_queues) if thread.is_alive()}


def _pool_name(worker: threading.Thread) -> str:
    """Return a worker's pool, as its name prefix (`SyncWorker_3` → `SyncWorker`)."""
    return worker.name.rsplit("_", 1)[0]


def _descriptors() -> Counter[str]:
    """Return the open descriptors by kind (`socket`, `pipe`, `anon_inode:[eventfd]`, a path)."""
    kinds: Counter[str] = Counter()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except FileNotFoundError:
            continue  # closed meanwhile (the listing's own descriptor)
        kinds[target.split(":[", 1)[0] if target.startswith(("socket", "pipe")) else target] += 1
    return kinds


def _busy(worker: threading.Thread) -> bool:
    """Return whether a pool worker is running a job (an idle one waits in `_worker` itself)."""
    frame = sys._current_frames().get(worker.ident or -1)
    return frame is not None and frame.f_code.co_name != "_worker"


@dataclass(frozen=True)
class Usage:
    """What the process holds at one moment."""

    rss: int
    fds: Counter[str]
    """Open descriptors by kind."""
    threads: Counter[str] = field(default_factory=Counter)
    """Names of the live threads that are neither pool workers nor native threads."""
    pools: dict[str, int] = field(default_factory=dict)
    """Workers of each executor pool."""
    busy_workers: tuple[str, ...] = ()
    """Pool workers running a job."""

    @classmethod
    def now(cls) -> Usage:
        """Collect garbage, then take stock."""
        gc.collect()
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
        workers = _pool_workers()
        return cls(
            rss=pages * os.sysconf("SC_PAGE_SIZE"),
            fds=_descriptors(),
            threads=Counter(
                thread.name
                for thread in threading.enumerate()
                # Native threads (PortAudio's callbacks) that entered Python stay listed as
                # dummies after they end; the device threads around them are named and counted.
                if thread not in workers and not isinstance(thread, threading._DummyThread)
            ),
            pools=dict(Counter(_pool_name(worker) for worker in workers)),
            busy_workers=tuple(sorted(worker.name for worker in workers if _busy(worker))),
        )

    @classmethod
    async def settled(cls, timeout: float = SETTLE_SECONDS) -> Usage:
        """Take stock once no pool worker runs a job, or after timeout (then some still do)."""
        deadline = time.monotonic() + timeout
        while any(map(_busy, _pool_workers())) and time.monotonic() < deadline:  # noqa: ASYNC110 - threads set no event
            await asyncio.sleep(0.05)
        return cls.now()

    def assert_flat(self, later: Usage) -> None:
        """Fail if `later` holds a thread, a stuck job, descriptors or memory beyond the bounds."""
        print(f"before {self}, after {later}")  # noqa: T201 - the soak's figures, shown with -s
        assert not later.threads - self.threads, "threads outlived their conversation"
        assert not later.busy_workers, "executor jobs never returned"
        assert all(count <= POOL_WORKERS_BOUND for count in later.pools.values())
        grown = later.fds - self.fds
        assert later.fds.total() <= self.fds.total() + FD_GROWTH_BOUND, f"descriptors {grown}"
        assert later.rss - self.rss < RSS_GROWTH_BOUND
