"""What the speaker plays: replies behind a margin, late frames concealed, a late device held.

The rules run on the Playout itself, with the test as both the decoder (write) and the device
(pull), on a clock the test sets: that is the only way to make a frame late or a device stall
on cue. The last test plays through a real PulseAudio sink that starts late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import subprocess

import numpy as np
import pytest

from custom_components.realtime_voice.audio import AudioFormat, BackendName, create_backend
from custom_components.realtime_voice.audio.frames import AUDIBLE_PEAK
from custom_components.realtime_voice.audio.playout import (
    SPEAKER_BUFFER_SECONDS,
    Playout,
)
from custom_components.realtime_voice.audio.speaker import SpeakerSink
from tests.helpers.audio_helpers import MonitorClock, QueueTrack, until
from tests.helpers.virtual_audio import SPEAKER, SPEAKER_MONITOR

BLOCK = 480
"""Samples the device takes at a time: 10 ms, as the pulse backend does."""
FRAME = 960


class Clock:
    """Time as the test says."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def speech(frames: int, start: int = 0) -> np.ndarray:
    """Return frames of a loud rising ramp: every 4 samples tell where they came from."""
    return (4000 + np.arange(start * FRAME, (start + frames) * FRAME) // 4).astype(np.int16)


def silence(frames: int) -> np.ndarray:
    return np.zeros(frames * FRAME, np.int16)


def write(playout: Playout, samples: np.ndarray) -> None:
    """Write samples as the decoder does, one 20 ms frame at a time."""
    for index in range(0, samples.size, FRAME):
        playout.write(samples[index : index + FRAME].reshape(1, -1))


def pull(playout: Playout, clock: Clock, blocks: int = 1) -> np.ndarray:
    """Take blocks of 10 ms as the device does, 10 ms apart."""
    taken = []
    for _ in range(blocks):
        clock.now += 0.01
        taken.append(np.frombuffer(playout.pull(BLOCK * 2), np.int16))
    return np.concatenate(taken)


@pytest.fixture
def running() -> tuple[Playout, Clock]:
    """Return a playout whose device runs, with silence played for a while."""
    clock = Clock()
    playout = Playout(AudioFormat(), clock)
    for _ in range(20):
        write(playout, silence(1))
        pull(playout, clock, 2)
    return playout, clock


def test_a_reply_starts_behind_one_block_of_margin(running: tuple[Playout, Clock]) -> None:
    """Queued silence before a reply is cut to one device block, not to nothing."""
    playout, clock = running
    write(playout, silence(2))
    write(playout, speech(1))
    played = pull(playout, clock, 3)
    assert not played[:BLOCK].any()
    assert np.array_equal(played[BLOCK:], speech(1))
    assert (playout.stats.margin_ms, playout.stats.dropped_ms) == (10.0, 0)


def test_a_late_frame_in_speech_is_concealed_and_then_played_whole(
    running: tuple[Playout, Clock],
) -> None:
    """The device never plays digital silence inside a reply; the late frame is not lost.

    The gap is filled with the speech before it, faded out; the late frame fades in, and the
    next reply starts behind a wider margin.
    """
    playout, clock = running
    write(playout, speech(2))
    before = pull(playout, clock, 5)  # margin + 2 frames: everything queued
    gap = pull(playout, clock)  # the third frame is late
    write(playout, speech(2, start=2))
    after = pull(playout, clock, 4)
    assert np.array_equal(before[BLOCK:], speech(2))
    assert abs(int(gap[0]) - int(before[-1])) < 200  # continues where the speech was
    assert np.abs(gap).max() >= AUDIBLE_PEAK
    assert abs(int(gap[-1])) < 100  # and fades out
    assert abs(int(after[0])) < 100  # the late frame fades in
    assert np.array_equal(after[200:], speech(2, start=2)[200:])
    stats = playout.stats
    assert (stats.underruns, stats.late_frames, stats.concealed_ms) == (1, 1, 10.0)
    assert stats.margin_ms == 20.0
    assert stats.dropped_ms == 0

    write(playout, silence(3))
    pull(playout, clock, 4)
    write(playout, speech(1))
    assert not pull(playout, clock, 2).any()  # the next reply waits 20 ms


def test_the_end_of_a_reply_from_a_peer_that_then_sends_nothing_is_faded_out(
    running: tuple[Playout, Clock],
) -> None:
    """Speech that ends without silence after it fades out, and the next reply is not delayed."""
    playout, clock = running
    write(playout, speech(1))
    played = pull(playout, clock, 3)
    tail = pull(playout, clock, 20)
    clock.now += 1.0
    write(playout, speech(1))
    assert abs(int(played[-1]) - int(tail[0])) < 200
    assert not tail[-BLOCK:].any()
    assert playout.stats.late_frames == 0
    assert playout.stats.margin_ms == 10.0


def test_a_device_that_has_not_started_loses_nothing() -> None:
    """A sink that takes its first audio 1.5 s late still plays the reply from its first word."""
    clock = Clock()
    playout = Playout(AudioFormat(), clock)
    reply = speech(75)  # 1.5 s
    for index in range(75):
        write(playout, reply[index * FRAME : (index + 1) * FRAME])
        clock.now += 0.02
    played = pull(playout, clock, 151)
    assert np.array_equal(played[BLOCK : BLOCK + reply.size], reply)
    assert playout.stats.dropped_ms == 0
    assert playout.stats.held_ms == 1510.0


def test_once_the_device_runs_a_burst_beyond_the_bound_drops_the_oldest(
    running: tuple[Playout, Clock],
) -> None:
    """The latency bound holds for a running device: a burst leaves only its newest 200 ms."""
    playout, clock = running
    write(playout, speech(20))  # 400 ms at once
    bound = SPEAKER_BUFFER_SECONDS * 1000
    assert playout.stats.dropped_ms == pytest.approx(400 + 10 - bound)
    assert len(playout) == int(48000 * 2 * SPEAKER_BUFFER_SECONDS)
    assert np.array_equal(pull(playout, clock, 20), speech(20)[-20 * BLOCK :])


@pytest.fixture
def suspend_speaker() -> Iterator[Callable[[int], None]]:
    """Suspend (1) or resume (0) the virtual speaker; it is resumed after the test anyway."""

    def suspend(state: int) -> None:
        subprocess.run(["pactl", "suspend-sink", SPEAKER, str(state)], check=True)

    yield suspend
    suspend(0)


@pytest.mark.usefixtures("virtual_audio")
async def test_a_speaker_that_starts_late_still_says_the_first_words(
    suspend_speaker: Callable[[int], None],
) -> None:
    """Real PulseAudio: the sink wakes 500 ms after the reply began; all of it is heard.

    The reply is loud in every sample and its level tells where in it a sample came from, so
    the recording shows a dropped start by its first level and a loss by its length. (The null
    sink itself may play a little before it sleeps and pause then: where the speech pauses is
    the test bed's, not the sink's.)
    """
    loop = asyncio.get_running_loop()
    backend = await loop.run_in_executor(None, create_backend, BackendName.PULSE)
    track = QueueTrack()
    reply = speech(50)  # 1 s
    try:
        with MonitorClock(SPEAKER_MONITOR) as recorder:
            suspend_speaker(1)
            async with await SpeakerSink.open(backend, SPEAKER) as sink:
                player = asyncio.create_task(sink.play(track))
                try:
                    for index in range(0, reply.size, FRAME):  # as the network brings it
                        track.put_samples(reply[index : index + FRAME])
                        await asyncio.sleep(FRAME / 48000)
                        if index == 25 * FRAME:  # 500 ms into the reply
                            await loop.run_in_executor(None, suspend_speaker, 0)
                    await until(lambda: sink.queued_seconds == 0, timeout=10)
                    await asyncio.sleep(0.3)
                finally:
                    track.queue.put_nowait(None)
                    await player
                stats = sink.stats
    finally:
        await loop.run_in_executor(None, backend.close)
    heard = np.concatenate(recorder.samples)
    loud = np.flatnonzero(np.abs(heard) >= AUDIBLE_PEAK)
    first = heard[loud[0] + BLOCK // 2 : loud[0] + BLOCK].mean()  # past the sink's filter
    assert stats.dropped_ms == 0
    assert stats.held_ms >= 400  # the 500 ms, less what the sink took before it slept
    assert abs(first - reply[BLOCK // 2 : BLOCK].mean()) < 100  # from its first words on
    # All of it, but what the null sink loses as it sleeps and wakes (up to 49 ms measured);
    # a buffer that dropped the oldest beyond 200 ms lost 300 ms or more of this reply.
    assert loud.size >= reply.size - 0.1 * 48000
