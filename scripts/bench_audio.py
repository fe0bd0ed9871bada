"""Measure the audio engine's delays and CPU on the PulseAudio virtual devices, per backend.

Run inside a virtual-audio session:
  . scripts/lib.sh && in_env bash -c '. scripts/virtual-audio.sh; start_virtual_audio; \
      python scripts/bench_audio.py; stop_virtual_audio'

mic-to-wire:      a click enters the virtual mic (seen by a 5 ms reference recorder on `mic`)
                  -> decoded at the receiving aiortc peer.
wire-to-speaker:  the sending peer's track hands a click to aiortc
                  -> heard on speaker.monitor (5 ms reference recorder); "decoded->heard" is
                  the part after aiortc's receiver (the sink and the device).
CPU:              process CPU seconds per second while both directions run; both aiortc peers
                  live in this process, so it counts two encoders and two decoders.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).parents[1]))

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
import numpy as np

from custom_components.realtime_voice.audio import BackendName, create_backend
from custom_components.realtime_voice.audio.tracks import MicrophoneTrack, SpeakerSink
from tests.audio_helpers import MonitorClock, ScriptedTrack, connected_peers, mono, rms
from tests.virtual_audio import MIC, SPEAKER_MONITOR, play_into_mic, tone, write_wav

CLICKS = 20
PERIOD = 0.5
LOUD = 1000.0


def click() -> np.ndarray:
    """Return 10 ms of a loud 1 kHz burst."""
    return tone(1000.0, 0.01, amplitude=0.8)


def onsets(times: list[float], gap: float = PERIOD / 2) -> list[float]:
    """Return the first time of each group of loud times."""
    result: list[float] = []
    for at in times:
        if not result or at - result[-1] > gap:
            result.append(at)
    return result


def summary(name: str, delays: list[float]) -> str:
    """Format median / p90 / max in ms."""
    if not delays:
        return f"{name}: no clicks matched"
    ms = sorted(1000 * d for d in delays)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return (
        f"{name}: median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms"
        f" (n={len(ms)})"
    )


def pair(reference: list[float], arrivals: list[float]) -> list[float]:
    """Match each reference onset with the first arrival after it."""
    delays = []
    for at in reference:
        later = [a for a in arrivals if at <= a < at + PERIOD * 0.9]
        if later:
            delays.append(later[0] - at)
    return delays


class TimingTrack(MediaStreamTrack):
    """Passes a remote track through, noting when loud frames were decoded."""

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.inner = inner
        self.loud: list[float] = []

    async def recv(self):  # noqa: ANN201 - aiortc's Frame
        """Return the inner track's next frame."""
        frame = await self.inner.recv()
        if rms(mono(frame)) > LOUD:
            self.loud.append(time.monotonic())
        return frame


async def collect_loud(track: MediaStreamTrack, into: list[float]) -> None:
    """Note when loud frames arrive until the track ends."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if rms(mono(frame)) > LOUD:
            into.append(time.monotonic())


async def bench(name: BackendName, workdir: Path) -> None:
    """Run both directions at once on one backend and print the numbers."""
    loop = asyncio.get_running_loop()
    backend = await loop.run_in_executor(None, create_backend, name)
    clicks_wav = np.concatenate([np.pad(click(), (0, int(48000 * PERIOD) - 480))] * CLICKS)
    wav = write_wav(workdir / "clicks.wav", clicks_wav)
    source = ScriptedTrack()
    mic_arrivals: list[float] = []
    async with (
        await MicrophoneTrack.open(backend) as mic,
        await SpeakerSink.open(backend) as sink,
        connected_peers(mic) as mic_remote,
        connected_peers(source) as speaker_remote,
    ):
        timed = TimingTrack(speaker_remote)
        tasks = [
            asyncio.create_task(sink.play(timed)),
            asyncio.create_task(collect_loud(mic_remote, mic_arrivals)),
        ]
        with MonitorClock(MIC) as mic_ref, MonitorClock(SPEAKER_MONITOR) as speaker_ref:
            await asyncio.sleep(3)  # null sinks hold new streams for ~2 s
            cpu, wall = time.process_time(), time.monotonic()
            playing = loop.run_in_executor(None, play_into_mic, wav)
            for _ in range(CLICKS):
                source.say(click())
                await asyncio.sleep(PERIOD)
            await playing
            await asyncio.sleep(0.5)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        sent = onsets([at for at, _ in source.sent])
        print(f"[{name}]")
        print("  " + summary("mic-to-wire", pair(onsets(mic_ref.loud_times()), mic_arrivals)))
        heard = onsets(speaker_ref.loud_times())
        print("  " + summary("wire-to-speaker", pair(sent, heard)))
        print("  " + summary("  of which decoded->heard", pair(onsets(timed.loud), heard)))
        print("  " + summary("  of which sent->decoded", pair(sent, onsets(timed.loud))))
        print(
            f"  CPU: {cpu / wall:.3f} s per s of duplex audio; sink {sink.stats}; mic {mic.stats}"
        )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.run_in_executor(None, backend.close)


async def main() -> None:
    """Benchmark every backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[b.value for b in BackendName], action="append")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.backend or list(BackendName):
            await bench(BackendName(name), Path(workdir))


if __name__ == "__main__":
    asyncio.run(main())
