"""The echo canceller on real devices: the speaker's echo reaches the microphone through PulseAudio.

Two microphone tracks record the same source at once, one raw and one through the canceller,
while the speaker plays espeak-ng speech and acoustic_echo() feeds it back: the difference is
what cancellation removed, measured on the very same echo.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from custom_components.realtime_voice.audio import AudioBackend
from custom_components.realtime_voice.audio.echo import (
    EchoReference,
    MicrophoneProcessor,
    ProcessingOptions,
)
from custom_components.realtime_voice.audio.microphone import MicrophoneTrack
from custom_components.realtime_voice.audio.speaker import SpeakerSink
from tests.helpers.audio_helpers import QueueTrack, rms, until
from tests.helpers.virtual_audio import ECHO_LEVELS_DB, acoustic_echo, speech_wav
from tests.simulator.voice import read_wav

pytestmark = pytest.mark.usefixtures("virtual_audio")


ECHO_RMS = 100.0
"""A raw frame above this (-50 dBFS) holds echo."""
MIN_ERLE_DB = 20.0
"""Loose: 40-65 dB here on an idle machine."""


def _energy(samples: np.ndarray) -> float:
    """Return the mean square of int16 samples, never zero (a log ratio needs that)."""
    return float(np.mean(samples.astype(np.float64) ** 2)) + 1.0


async def _running(mic: MicrophoneTrack) -> None:
    """Read the mic until the device runs (a new stream on a null sink may wait ~2 s)."""
    async with asyncio.timeout(5):
        while mic.stats.frames - mic.stats.stalled_frames < 30:
            await mic.recv()


async def _say(track: QueueTrack, samples: np.ndarray) -> None:
    """Hand the sink 20 ms at a time, as the network does (its buffer holds 200 ms)."""
    for start in range(0, samples.size, 960):
        track.put_samples(np.pad(samples[start : start + 960], (0, 960))[:960])
        await asyncio.sleep(0.02)


async def _record(mic: MicrophoneTrack, into: list[np.ndarray], count: int) -> None:
    into.extend([(await mic.recv()).to_ndarray().reshape(-1) for _ in range(count)])


@pytest.mark.parametrize("gain_db", ECHO_LEVELS_DB)
async def test_the_canceller_removes_the_speakers_echo(
    backend: AudioBackend, gain_db: float, tmp_path: Path
) -> None:
    """Speech on the speaker, its echo in the microphone: the canceller takes 20 dB and more."""
    story = "Once upon a time, a little robot lived on a shelf in a quiet kitchen."
    speech = read_wav(speech_wav(tmp_path / "story.wav", story).read_bytes())
    reference = EchoReference()
    processor = MicrophoneProcessor(ProcessingOptions(), reference)
    track = QueueTrack()
    raw: list[np.ndarray] = []
    cleaned: list[np.ndarray] = []
    with acoustic_echo(gain_db):
        async with (
            await SpeakerSink.open(backend, echo_reference=reference) as sink,
            await MicrophoneTrack.open(backend) as raw_mic,
            await MicrophoneTrack.open(backend, processor=processor) as mic,
        ):
            player = asyncio.create_task(sink.play(track))
            await until(lambda: sink.stats.played_ms > 200)
            await asyncio.gather(_running(raw_mic), _running(mic))
            frames = speech.size // 960 + 25
            await asyncio.gather(
                _record(raw_mic, raw, frames), _record(mic, cleaned, frames), _say(track, speech)
            )
            track.queue.put_nowait(None)
            await player
    echo = [(r, c) for r, c in zip(raw, cleaned, strict=False) if rms(r) > ECHO_RMS]
    erle_db = [10 * np.log10(_energy(r) / _energy(c)) for r, c in echo]
    assert len(echo) > 25  # the echo was there, for half a second at least
    # Median over frames: a busy machine's stalls (the echo path jumps) spoil a few, not half.
    assert np.median(erle_db) > MIN_ERLE_DB, processor.stats


_BOTH_IN_ONE_PROCESS = """
import sys
import numpy as np
from custom_components.realtime_voice.audio.echo import MicrophoneProcessor, ProcessingOptions

def ours():
    processor = MicrophoneProcessor(ProcessingOptions(echo_cancellation=False), None)
    return len(processor.process(bytes(1920), 0.0)) // 2

def home_assistants():
    from pyspeex_noise import AudioProcessor  # what Home Assistant's Assist pipeline loads
    return len(AudioProcessor(4000, 2).Process10ms(bytes(320)).audio)

first, second = (ours, home_assistants) if sys.argv[1] == "ours" else (home_assistants, ours)
print(first(), second())
"""


@pytest.mark.parametrize("first", ["ours", "home_assistants"])
def test_the_canceller_and_home_assistants_voice_pipeline_load_side_by_side(first: str) -> None:
    """pywebrtc-audio and pyspeex-noise both bind a C++ `AudioProcessor` with pybind11.

    Imported plainly, the second of them fails ("type AudioProcessor is already registered"),
    and with ours first Home Assistant's Assist pipeline no longer loads. A fresh interpreter per
    order: the clash happens at import, once per process.
    """
    result = subprocess.run(
        [sys.executable, "-c", _BOTH_IN_ONE_PROCESS, first],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr  # a refcount gone wrong crashes at exit
    assert "Exception ignored" not in result.stderr
    sizes = [int(size) for size in result.stdout.split()]
    ours, home_assistants = sizes if first == "ours" else sizes[::-1]
    assert (ours, home_assistants) == (960, 320)
