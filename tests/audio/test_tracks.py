"""MicrophoneTrack timing, SpeakerSink endings and EchoGate rules, with a scripted device.

The speaker's playout rules are in test_audio_playout.py.

The device here is a stand-in that a test feeds from a worker thread (or pulls from), as a
backend's device thread would: it is the only way to stall a device, overrun the queue or
choose the moment a block is played, on cue.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
import av
import numpy as np
import pytest

from custom_components.realtime_voice.audio import (
    AudioDevice,
    AudioFormat,
    BackendName,
    DuplexMode,
    EchoGate,
)
from custom_components.realtime_voice.audio.backend import (
    AudioDeviceLostError,
    BlockHandler,
    BlockSource,
    DeviceStream,
    ErrorHandler,
    OutputDeviceStream,
)
from custom_components.realtime_voice.audio.microphone import MIC_QUEUE_FRAMES, MicrophoneTrack
from custom_components.realtime_voice.audio.opus import VoiceEncoder
from custom_components.realtime_voice.audio.speaker import SpeakerSink
from tests.helpers.audio_helpers import QueueTrack, mono, rms, until
from tests.helpers.error_log import ErrorLog


class _ScriptedStream:
    format = AudioFormat()
    latency: float | None = 0.0

    def flush(self) -> None:
        """Nothing queued in a scripted device."""

    def close(self) -> None:
        """Nothing to release."""


class ScriptedBackend:
    """An input device that records exactly what the test feeds it."""

    name = BackendName.PULSE

    def __init__(self, output_format: AudioFormat | None = None) -> None:
        self.output_format = output_format or AudioFormat()
        self.on_block: BlockHandler | None = None
        self.pull: BlockSource | None = None
        self.output_failed: ErrorHandler | None = None

    def list_devices(self) -> list[AudioDevice]:
        return []

    def open_input(
        self,
        device: str | None,
        audio_format: AudioFormat,
        on_block: BlockHandler,
        on_error: ErrorHandler,
    ) -> DeviceStream:
        self.on_block = on_block
        return _ScriptedStream()

    def open_output(
        self,
        device: str | None,
        audio_format: AudioFormat,
        pull: BlockSource,
        on_error: ErrorHandler,
    ) -> OutputDeviceStream:
        self.pull = pull
        self.output_failed = on_error
        stream = _ScriptedStream()
        stream.format = self.output_format
        return stream

    def close(self) -> None:
        """Nothing to release."""

    async def feed(self, *values: int) -> None:
        """Record one 20 ms block per value (every sample equal to it), from a worker thread."""
        await self.feed_blocks(*(np.full(960, value, dtype=np.int16) for value in values))

    async def feed_blocks(self, *samples: np.ndarray) -> None:
        """Record one block per array of samples, from a worker thread."""
        assert self.on_block is not None
        blocks = [block.astype(np.int16).tobytes() for block in samples]
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: [*map(self.on_block, blocks)]
        )


def _value(frame: object) -> int:
    return int(frame.to_ndarray()[0, 0])  # type: ignore[attr-defined]


async def test_frames_are_20_ms_at_48_khz_with_pts_from_a_sample_counter() -> None:
    """Each frame is 960 mono samples at 48 kHz; pts advance by 960."""
    backend = ScriptedBackend()
    async with await MicrophoneTrack.open(backend) as mic:
        await backend.feed(1, 2, 3)
        frames = [await mic.recv() for _ in range(3)]
    assert [_value(f) for f in frames] == [1, 2, 3]
    assert [f.pts for f in frames] == [0, 960, 1920]
    assert {(f.samples, f.sample_rate, f.layout.name, f.format.name) for f in frames} == {
        (960, 48000, "mono", "s16")
    }


async def test_a_stalled_device_gives_paced_silence() -> None:
    """When the device stops, recv() keeps returning silence, 20 ms apart, pts counting on."""
    backend = ScriptedBackend()
    async with await MicrophoneTrack.open(backend) as mic:
        await backend.feed(7)
        first = await mic.recv()
        started = time.monotonic()
        silent = [await mic.recv() for _ in range(10)]
        elapsed = time.monotonic() - started
        await backend.feed(8)
        resumed = await mic.recv()
    assert _value(first) == 7
    assert all(_value(f) == 0 for f in silent)
    assert [f.pts for f in silent] == list(range(960, 11 * 960, 960))
    # Paced by the counter, not as fast as possible: frame k is due 20 k ms after the start and
    # given up on 40 ms (the grace) later, 0.24 s for the tenth. A schedule that slipped by the
    # grace at every frame would take 0.6 s; up to that, the room is for a loaded machine (a
    # stalled loop delays only the frames due during the stall; the counter catches up).
    assert 0.15 < elapsed < 0.55
    assert (_value(resumed), resumed.pts) == (8, 11 * 960)
    assert mic.stats.stalled_frames == 10


async def test_overrun_drops_the_oldest_blocks_and_counts_them() -> None:
    """Blocks nobody reads are kept up to MIC_QUEUE_FRAMES; older ones go first."""
    backend = ScriptedBackend()
    async with await MicrophoneTrack.open(backend) as mic:
        await backend.feed(*range(1, MIC_QUEUE_FRAMES + 4))
        frames = [await mic.recv() for _ in range(MIC_QUEUE_FRAMES)]
    assert [_value(f) for f in frames] == list(range(4, MIC_QUEUE_FRAMES + 4))
    assert mic.stats.dropped_blocks == 3


async def test_half_duplex_gate_sends_silence_while_the_assistant_speaks() -> None:
    """The gated track sends zeros with unbroken pts; the tail follows the end of playout."""
    backend = ScriptedBackend()
    now = [0.0]
    gate = EchoGate(tail_seconds=0.3, clock=lambda: now[0])
    async with await MicrophoneTrack.open(backend, gate=gate) as mic:
        gate.assistant_started()
        await backend.feed(5, 5)
        gated = [await mic.recv() for _ in range(2)]
    assert [_value(f) for f in gated] == [0, 0]
    assert mic.stats.gated_frames == 2


async def test_an_encoding_track_sends_opus_of_what_was_recorded() -> None:
    """Opened to encode, as a session opens it: Opus that decodes to what the device recorded.

    Packets carry pts from the counter; when the device is late or the gate closed, a packet
    that decodes to silence.
    """
    backend = ScriptedBackend()
    gate = EchoGate(tail_seconds=0.3)
    tone = 8000 * np.sin(2 * np.pi * 440 * np.arange(960 * 4) / 48000)
    async with await MicrophoneTrack.open(backend, gate=gate, encode=True) as mic:
        await backend.feed_blocks(*np.split(tone, 4))
        spoken = [await mic.recv() for _ in range(4)]
        late = [await mic.recv() for _ in range(3)]
        gate.assistant_started()
        await backend.feed_blocks(*np.split(tone, 4)[:2])
        gated = [await mic.recv() for _ in range(2)]
    packets = [*spoken, *late, *gated]
    assert all(isinstance(packet, av.Packet) for packet in packets)
    assert [packet.pts for packet in packets] == list(range(0, 9 * 960, 960))
    # Decoded in order, as the remote peer would; Opus delays by its 6.5 ms lookahead, so the
    # first packet is partly silence and the first silent one partly tone.
    decoder = OpusDecoder()
    heard = [
        rms(mono(decoder.decode(JitterFrame(bytes(packet), packet.pts))[0])) for packet in packets
    ]
    assert all(0.7 * rms(tone) < level < 1.3 * rms(tone) for level in heard[1:4]), heard
    assert all(level < 0.01 * rms(tone) for level in heard[5:]), heard
    assert (mic.stats.stalled_frames, mic.stats.gated_frames) == (3, 2)


@pytest.mark.parametrize(
    "device", [AudioFormat(), AudioFormat(rate=44100, channels=2)], ids=["48k_mono", "44k1_stereo"]
)
async def test_opus_packets_play_on_the_speaker(device: AudioFormat) -> None:
    """The assistant's packets, given to the sink as they arrive, play in the device's format.

    A conversation gives them so; they are decoded into the device's own rate and channels, and
    the device takes the reply's tone.
    """
    backend = ScriptedBackend(device)
    encoder = VoiceEncoder()
    tone = 8000 * np.sin(2 * np.pi * 440 * np.arange(960 * 10) / 48000)
    async with await SpeakerSink.open(backend) as sink:
        for frame in np.split(tone.astype(np.int16), 10):
            sink.write_opus(encoder.encode(frame.tobytes()))
        sink.write_opus(b"\xff not opus")  # dropped: one packet's gap, nothing else
        assert backend.pull is not None
        block = device.rate // 100  # 10 ms, as the pulse backend pulls
        played = np.frombuffer(b"".join(backend.pull(block) for _ in range(25)), np.int16)
    assert sink.stats.frames >= 10
    channels = played.reshape(-1, device.channels)
    assert np.array_equal(channels[:, 0], channels[:, -1])
    loud = channels[np.abs(channels[:, 0]) > 0, 0]
    # 200 ms of tone at the device's rate, give or take Opus's delay and the playout's margin.
    assert abs(loud.size - 0.2 * device.rate) < 0.03 * device.rate
    assert 0.8 * rms(tone) < rms(loud) < 1.2 * rms(tone)


async def _end_track_as_device_fails(*, device_first: bool) -> tuple[str, list[str]]:
    """Play a track; end it and fail the device in one loop iteration, in the given order.

    Return how play() ended and the device errors reported: only names and messages, so that
    nothing of the run (tasks, tracebacks) is referenced any more when it returns.
    """
    backend = ScriptedBackend()
    track = QueueTrack()
    lost: list[str] = []
    async with await SpeakerSink.open(
        backend, on_device_lost=lambda err: lost.append(str(err))
    ) as sink:
        player = asyncio.create_task(sink.play(track))
        track.put_samples(np.zeros(960, np.int16))
        await until(lambda: sink.stats.frames == 1)  # the sink waits in recv() now
        failed = backend.output_failed
        assert failed is not None
        fail = [lambda: failed(AudioDeviceLostError("unplugged"))]
        end = [lambda: track.queue.put_nowait(None)]
        for happen in fail + end if device_first else end + fail:
            happen()
        await asyncio.wait({player}, timeout=5)
        outcome = player.exception()
    return type(outcome).__name__, lost


@pytest.mark.parametrize("device_first", [False, True], ids=["track_first", "device_first"])
async def test_the_track_ending_as_the_device_fails_logs_no_error(
    error_log: ErrorLog, *, device_first: bool
) -> None:
    """The remote track ends and the device fails in one loop iteration: no error is logged.

    Either may be noticed first; the sink stops and reports the device, and leaves no task whose
    exception nobody retrieves (asyncio logs those at ERROR when it collects them).
    """
    ended, lost = await _end_track_as_device_fails(device_first=device_first)
    assert error_log.unexpected() == []
    assert ended in {"NoneType", "AudioDeviceLostError"}
    assert lost == ["unplugged"]


def test_echo_gate_rules() -> None:
    """Half duplex: closed while speaking or playing and for the tail after; full: always open."""
    now = [0.0]
    gate = EchoGate(tail_seconds=0.3, clock=lambda: now[0])
    assert gate.is_open
    gate.assistant_started()
    assert not gate.is_open
    gate.assistant_stopped()
    now[0] = 0.29
    assert not gate.is_open
    now[0] = 0.31
    assert gate.is_open
    gate.playout_changed(playing=True)
    assert not gate.is_open
    gate.playout_changed(playing=False)
    assert not gate.is_open
    now[0] = 0.62
    assert gate.is_open
    gate.mode = DuplexMode.FULL
    gate.assistant_started()
    assert gate.is_open


async def test_a_track_that_ends_as_playing_is_cancelled_leaves_no_error() -> None:
    """The remote track ends (the peer hung up) in the same instant the speaker is stopped.

    The frame request then holds MediaStreamError while play() is cancelled; nobody may be left
    to find it, or asyncio logs "Task exception was never retrieved" at ERROR when it is
    collected: an error in the log at the end of a normal conversation.
    """
    unretrieved: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    sink = await SpeakerSink.open(ScriptedBackend(), None)
    track = QueueTrack()
    player = asyncio.create_task(sink.play(track))
    await asyncio.sleep(0.05)  # waiting for the first frame
    track.queue.put_nowait(None)  # the track ends...
    player.cancel()  # ...as the conversation closes the speaker
    with contextlib.suppress(asyncio.CancelledError):
        await player
    await sink.aclose()
    del player
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert unretrieved == []


def test_echo_cancellation_guards_only_the_start_of_each_reply() -> None:
    """With echo cancellation the gate is open while the assistant speaks, but for 200 ms."""
    now = [0.0]
    gate = EchoGate(DuplexMode.ECHO_CANCELLATION, guard_seconds=0.2, clock=lambda: now[0])
    gate.assistant_started()
    assert gate.is_open  # the server's event: nothing is heard yet
    gate.playout_changed(playing=True)
    assert not gate.is_open
    now[0] = 0.21
    assert gate.is_open
    gate.playout_changed(playing=False)
    assert gate.is_open  # no tail: the canceller covers the room's reverberation
    gate.playout_changed(playing=True)
    assert not gate.is_open
