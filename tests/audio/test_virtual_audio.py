"""Real audio through PulseAudio virtual devices, with both audio libraries the integration uses.

These prove the environment: what is played into the virtual microphone is recorded by
PortAudio (sounddevice) and by libpulse, and what they play is heard on the virtual speaker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
import threading

import numpy as np
import pytest

from custom_components.realtime_voice.audio.libpulse import Direction, PulseStream
from tests.helpers.virtual_audio import (
    MIC,
    RATE,
    SPEAKER,
    dominant_hz,
    play_into_mic,
    recording,
    rms,
    tone,
    write_wav,
)

pytestmark = pytest.mark.usefixtures("virtual_audio")


TONE_HZ = 440.0
# A 0.5-amplitude sine has an RMS of about 11 585; silence on a null sink is exactly 0.
HEARD_RMS = 3000.0
SILENT_RMS = 50.0


def _assert_tone_heard(samples: np.ndarray) -> None:
    """Assert the recording holds the test tone, loud, and not only silence."""
    loud = samples[np.abs(samples) > 1000]
    assert loud.size > RATE // 2, f"only {loud.size} loud samples were recorded"
    assert rms(loud) > HEARD_RMS
    assert abs(dominant_hz(samples) - TONE_HZ) < 5


type BlockReader = Callable[[], AbstractContextManager[Callable[[int], np.ndarray]]]
TAIL_BLOCKS = 15
"""20 ms blocks still recorded after the tone was played: the sink's own latency."""


def _record_mic_while_playing(open_reader: BlockReader, tmp_path: Path) -> np.ndarray:
    """Record the virtual mic in 20 ms blocks; play a 1 s tone into it once recording runs.

    A new stream on a null sink can deliver nothing for up to 2 s: the tone starts only after
    the first block arrived, so the test does not depend on how long that takes.
    """
    wav = write_wav(tmp_path / "tone.wav", tone(TONE_HZ, 1.0))
    started, played = threading.Event(), threading.Event()

    def record() -> np.ndarray:
        blocks: list[np.ndarray] = []
        with open_reader() as read:
            while not played.is_set():
                blocks.append(read(960))
                started.set()
            blocks.extend(read(960) for _ in range(TAIL_BLOCKS))
        return np.concatenate(blocks)

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(record)
        assert started.wait(10), "the recorder never delivered audio"
        play_into_mic(wav)
        played.set()
        return future.result(timeout=10)


def test_sounddevice_records_the_virtual_mic(tmp_path: Path) -> None:
    """PortAudio (ALSA's pulse plugin) hears what is played into the virtual mic."""
    import sounddevice  # noqa: PLC0415 - needs PortAudio, present in the test environment

    @contextmanager
    def reader() -> Iterator[Callable[[int], np.ndarray]]:
        with sounddevice.InputStream(
            samplerate=RATE, channels=1, dtype="int16", blocksize=960
        ) as stream:
            yield lambda frames: stream.read(frames)[0][:, 0].copy()

    _assert_tone_heard(_record_mic_while_playing(reader, tmp_path))


def test_libpulse_records_the_virtual_mic(tmp_path: Path) -> None:
    """libpulse-simple hears what is played into the virtual mic."""

    @contextmanager
    def reader() -> Iterator[Callable[[int], np.ndarray]]:
        stream = PulseStream(Direction.RECORD, device=MIC, rate=RATE, channels=1)
        try:
            yield lambda frames: np.frombuffer(stream.read(frames * 2), dtype=np.int16)
        finally:
            stream.close()

    _assert_tone_heard(_record_mic_while_playing(reader, tmp_path))


def test_sounddevice_plays_on_the_virtual_speaker() -> None:
    """What PortAudio plays is heard on the speaker's monitor."""
    import sounddevice  # noqa: PLC0415

    with recording() as recorded:
        sounddevice.play(tone(TONE_HZ, 1.0), samplerate=RATE, blocking=True)
    _assert_tone_heard(recorded[0])


def test_libpulse_plays_on_the_virtual_speaker() -> None:
    """What libpulse-simple plays is heard on the speaker's monitor."""
    with recording() as recorded:
        stream = PulseStream(Direction.PLAYBACK, device=SPEAKER, rate=RATE, channels=1)
        try:
            stream.write(tone(TONE_HZ, 1.0).tobytes())
            stream.drain()
        finally:
            stream.close()
    _assert_tone_heard(recorded[0])


def test_nothing_played_means_silence() -> None:
    """The speaker's monitor is silent when nothing plays, so the tests above can fail."""
    stream = PulseStream(Direction.RECORD, device="speaker.monitor", rate=RATE, channels=1)
    try:
        samples = np.frombuffer(stream.read(RATE // 2 * 2), dtype=np.int16)
    finally:
        stream.close()
    assert rms(samples) < SILENT_RMS
