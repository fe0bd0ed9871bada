"""EchoReference: the speaker's far end on the clock of when it is heard, stamps versus stream."""

from __future__ import annotations

import time

import numpy as np
import pytest

from custom_components.realtime_voice.audio import AudioFormat
from custom_components.realtime_voice.audio.echo import (
    REALIGN_AFTER,
    REFERENCE_WAIT_SECONDS,
    EchoReference,
)

RATE = 48000
BLOCK = 480  # 10 ms, as the pulse backend's playback thread takes them


def _block(value: int, size: int = BLOCK) -> bytes:
    return np.full(size, value, dtype=np.int16).tobytes()


def _play(reference: EchoReference, values: list[int], latency: float = 0.03) -> None:
    """Play 10 ms blocks at once, as into an empty device buffer: each is heard 10 ms later."""
    for index, value in enumerate(values):
        reference.played(_block(value), AudioFormat(), latency + index * BLOCK / RATE)


def test_the_microphone_gets_what_was_heard_while_it_recorded() -> None:
    """Blocks stamped now + latency come back for the time they were heard, sample-exact."""
    reference = EchoReference()
    start = time.monotonic()
    _play(reference, [1, 2, 3, 4, 5])
    heard = reference.heard(start + 0.03 + 0.01, 2 * BLOCK)
    edge = 48  # 1 ms: the test's clock reading and the first stamp are not the same instant
    assert list(np.unique(heard[edge:BLOCK])) == [2]
    assert list(np.unique(heard[BLOCK + edge :])) == [3]
    assert reference.realignments == (0, 0)


def test_a_flush_moves_the_stream_back_once_the_stamps_agree() -> None:
    """Queued audio dropped by a flush: later blocks are heard sooner, the stream follows."""
    reference = EchoReference()
    _play(reference, [1] * 10)
    # After the flush the device buffer is empty again: the next blocks are heard 70 ms sooner.
    _play(reference, [2] * REALIGN_AFTER)
    assert reference.realignments == (1, 0)
    _play(reference, [3] * 5, latency=0.03 + REALIGN_AFTER * BLOCK / RATE)
    assert reference.realignments == (1, 0)


def test_a_single_late_microphone_stamp_is_jitter() -> None:
    """One microphone stamp far off (a busy thread) does not move its place in the stream."""
    reference = EchoReference()
    start = time.monotonic()
    _play(reference, [1] * 50)
    for index in range(10):
        late = 0.05 if index == 5 else 0.0
        reference.heard(start + 0.03 + index * BLOCK / RATE + late, BLOCK)
    assert reference.realignments == (0, 0)


def test_audio_not_played_yet_is_silence_and_counted() -> None:
    """Asking ahead of the speaker gives zeros and says how much was missing."""
    reference = EchoReference()
    reference.played(_block(7), AudioFormat(), latency=0.0)
    asked = time.monotonic()
    heard = reference.heard(asked + 1.0, BLOCK)
    assert not heard.any()
    assert reference.missing == BLOCK
    assert time.monotonic() - asked >= REFERENCE_WAIT_SECONDS  # it waited for the speaker


@pytest.mark.parametrize("audio_format", [AudioFormat(44100, 2), AudioFormat(48000, 2)])
def test_other_device_formats_become_48_khz_mono(audio_format: AudioFormat) -> None:
    """A speaker opened in its own format still gives the canceller 48 kHz mono."""
    reference = EchoReference()
    start = time.monotonic()
    frames = audio_format.rate // 100
    block = np.full(frames * audio_format.channels, 1000, dtype=np.int16).tobytes()
    for index in range(20):
        reference.played(block, audio_format, latency=index / 100)
    heard = reference.heard(start + 0.1, BLOCK)
    assert abs(int(np.median(heard)) - 1000) <= 2
