"""CPU of noticing a removed PulseAudio device: the old listing per check against the watch.

    . scripts/lib.sh && in_env sh -c '. scripts/virtual-audio.sh && start_virtual_audio &&
        python -m tests.bench.presence_cost'

Before the watch, each stream on a named device listed every device (a new server connection)
every 0.5 s; the bench opens two such streams. CPU time of this process only (the daemon's
share of a listing is not counted), so the machine's load changes the figures little.
"""

from __future__ import annotations

import resource
import time

from custom_components.realtime_voice.audio.pulse_devices import list_pulse_devices
from custom_components.realtime_voice.audio.pulse_watch import DeviceWatch

LISTINGS = 200
WATCH_SECONDS = 10.0
CHECKS_PER_SECOND = 2
STREAMS = 2


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Print both costs in CPU seconds per second of conversation, three times."""
    for _ in range(3):
        start = _cpu()
        for _ in range(LISTINGS):
            list_pulse_devices()
        per_listing = (_cpu() - start) / LISTINGS
        watch = DeviceWatch()
        watch.start()
        start, wall = _cpu(), time.monotonic()
        time.sleep(WATCH_SECONDS)
        watching = (_cpu() - start) / (time.monotonic() - wall)
        watch.close()
        listing = per_listing * CHECKS_PER_SECOND * STREAMS
        print(  # noqa: T201
            f"listing {1e6 * per_listing:.0f} µs -> {listing:.4f} s/s for {STREAMS} streams; "
            f"watch {watching:.5f} s/s"
        )


if __name__ == "__main__":
    main()
