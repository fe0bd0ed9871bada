"""The soak's resource check: it fails on a real leak and never on a slow machine.

The leaks here are made on purpose: a named thread of ours left running, a job stuck in an
executor pool. A pool that grew because jobs overlapped (what a loaded machine does) passes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import threading

import pytest

from .resources import Usage


def test_a_thread_of_ours_left_running_fails_the_check() -> None:
    """A device thread that outlives its conversation is a leak."""
    before = Usage.now()
    release = threading.Event()
    leaked = threading.Thread(
        target=release.wait, name="realtime_voice pulse _pulseoutput", daemon=True
    )
    leaked.start()
    try:
        later = Usage.now()
        with pytest.raises(AssertionError, match="threads outlived their conversation"):
            before.assert_flat(later)
    finally:
        release.set()
        leaked.join()
    before.assert_flat(Usage.now())


async def test_a_pool_grown_by_overlapping_jobs_passes() -> None:
    """Workers a pool starts lazily, because jobs overlapped, are not a leak."""
    before = Usage.now()
    overlapping = threading.Barrier(4)
    with ThreadPoolExecutor(8, thread_name_prefix="LoadedMachine") as pool:
        for future in [pool.submit(overlapping.wait, 5) for _ in range(4)]:
            future.result()
        later = await Usage.settled()
        before.assert_flat(later)
    assert later.pools["LoadedMachine"] == 4


async def test_a_job_stuck_in_a_pool_fails_the_check() -> None:
    """A job that never returns (a device close hanging in the executor) is a leak."""
    before = Usage.now()
    release = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="StuckClose") as pool:
        pool.submit(release.wait)
        try:
            later = await Usage.settled(timeout=0.2)
            with pytest.raises(AssertionError, match="executor jobs never returned"):
                before.assert_flat(later)
        finally:
            release.set()
    assert later.busy_workers == ("StuckClose_0",)
