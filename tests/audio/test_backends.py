"""The audio engine on real devices: PortAudio and libpulse against PulseAudio virtual devices.

Every test that touches a device runs once per backend. The aiortc peers talk over loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from custom_components.realtime_voice.audio import (
    AudioBackend,
    AudioDeviceError,
    AudioDeviceLostError,
    AudioFormat,
    BackendName,
    DuplexMode,
    EchoGate,
    create_backend,
    detect_backends,
)
from custom_components.realtime_voice.audio.gate import RESIDUAL_GUARD_SECONDS
from custom_components.realtime_voice.audio.microphone import MicrophoneTrack
from custom_components.realtime_voice.audio.speaker import SpeakerSink
from tests.helpers.audio_helpers import (
    MonitorClock,
    QueueTrack,
    ScriptedTrack,
    collect,
    connected_peers,
    rms,
    until,
)
from tests.helpers.virtual_audio import (
    MIC,
    SPEAKER,
    SPEAKER_MONITOR,
    dominant_hz,
    open_streams,
    play_into_mic,
    speech_wav,
    tone,
    write_wav,
)

pytestmark = pytest.mark.usefixtures("virtual_audio")

SILENT_RMS = 100.0
LOUD_RMS = 1000.0
FLUSH_BOUND_SECONDS = 0.1


def _engine_threads() -> list[threading.Thread]:
    """Return the audio engine's threads still alive."""
    return [thread for thread in threading.enumerate() if thread.name.startswith("realtime_voice")]


async def _wait_for_device_audio(mic: MicrophoneTrack) -> None:
    """Read the mic until the device runs (a new stream on a null sink waits up to ~2 s)."""
    async with asyncio.timeout(5):
        while mic.stats.frames - mic.stats.stalled_frames < 30:
            await mic.recv()


async def _wait_for_speaker_running(sink: SpeakerSink) -> None:
    """Wait until the device takes audio steadily (a new stream on a null sink waits ~2 s)."""
    await until(lambda: sink.stats.played_ms > 600)


def test_detection_sees_both_backends_and_the_virtual_devices() -> None:
    """Both libraries load here, and each lists the virtual devices as it can see them."""
    statuses = {status.name: status for status in detect_backends()}
    assert all(status.available for status in statuses.values())
    pulse = {device.name: device for device in statuses[BackendName.PULSE].devices}
    assert pulse[MIC].is_input
    assert pulse[SPEAKER].is_output
    assert pulse[SPEAKER_MONITOR].is_input
    # PortAudio sees PulseAudio through ALSA's pulse plugin, as one device.
    portaudio = {device.name for device in statuses[BackendName.SOUNDDEVICE].devices}
    assert {"pulse", "default"} <= portaudio


def test_missing_portaudio_is_a_typed_error_naming_the_fix() -> None:
    """Without PortAudio, detection reports AudioLibraryMissingError, not an import crash.

    Simulated in a subprocess: ctypes.util.find_library answers None for PortAudio, which is
    exactly what sounddevice's import sees when libportaudio2 is not installed (and on Alpine
    even when it is). The library cannot be uninstalled from the shared test environment.
    """
    code = """
import ctypes.util, sys, types
find = ctypes.util.find_library
ctypes.util.find_library = lambda name: None if "portaudio" in name else find(name)
# Load the audio library alone: it must not need the Home Assistant glue around it.
package = types.ModuleType("custom_components.realtime_voice")
package.__path__ = ["custom_components/realtime_voice"]
sys.modules[package.__name__] = package
from custom_components.realtime_voice.audio import BackendName, detect_backends
[status] = detect_backends([BackendName.SOUNDDEVICE])
print(type(status.error).__name__, status.error, sep="|")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=30
    )
    kind, message = result.stdout.strip().split("|")
    assert kind == "AudioLibraryMissingError"
    assert "libportaudio2" in message
    assert "pulse backend" in message


async def test_speech_in_the_mic_reaches_the_peer(
    backend: AudioBackend, socket_enabled: None, tmp_path: Path
) -> None:
    """Speech played into the virtual mic arrives at an aiortc peer, where the speech was."""
    wav = speech_wav(tmp_path / "speech.wav", "Turn on the kitchen light, please.")
    received: list[tuple[float, np.ndarray]] = []
    async with await MicrophoneTrack.open(backend) as mic:
        async with connected_peers(mic) as remote:
            collector = asyncio.create_task(collect(remote, received))
            await until(lambda: len(received) >= 10)
            await until(lambda: mic.stats.frames - mic.stats.stalled_frames >= 10)
            started = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, play_into_mic, wav)
            ended = time.monotonic()
            await until(lambda: received[-1][0] > ended + 0.3)
        await collector
    before = np.concatenate([s for at, s in received if at < started])
    during = np.concatenate([s for at, s in received if started + 0.2 < at < ended + 0.2])
    assert rms(before) < SILENT_RMS
    loud = [s for at, s in received if started < at < ended + 0.3 and rms(s) > LOUD_RMS]
    # The sentence holds about 1.2 s of loud speech; a starved device thread on a busy machine
    # can lose blocks of it (0.44 s arrived once at load 12), so a third is the bound.
    assert len(loud) * 0.02 > 0.4, f"only {len(loud)} loud frames"
    assert rms(during) > LOUD_RMS


async def test_peer_audio_plays_on_the_speaker(backend: AudioBackend, socket_enabled: None) -> None:
    """A tone sent by an aiortc peer is recorded from the virtual speaker's monitor."""
    source = ScriptedTrack()
    async with await SpeakerSink.open(backend) as sink:
        async with connected_peers(source) as remote:
            player = asyncio.create_task(sink.play(remote))
            await _wait_for_speaker_running(sink)
            with MonitorClock(SPEAKER_MONITOR) as monitor:
                # A new record stream on a null sink's monitor hears nothing for up to ~2 s.
                await until(lambda: len(monitor.blocks) > 20)
                source.say(tone(440.0, 1.0))
                await until(lambda: sink.is_playing)
                # A loaded machine may leave a gap that ends "playing" before the tone is over:
                # wait until all of it was sent, then until the device took 0.5 s more.
                await until(lambda: len(source.sent) == 50)
                sent = sink.stats.played_ms
                await until(lambda: sink.stats.played_ms > sent + 500 and not sink.is_playing)
        await player
    samples = np.concatenate(monitor.samples)
    loud = samples[np.abs(samples) > 1000]
    assert loud.size > 0.8 * 48000 // 2
    assert abs(dominant_hz(samples) - 440.0) < 5
    assert sink.stats.frames > 50


async def test_flush_silences_the_speaker_at_once(backend: AudioBackend) -> None:
    """flush() drops what is queued: the speaker is quiet within FLUSH_BOUND_SECONDS."""
    track = QueueTrack()
    async with await SpeakerSink.open(backend) as sink:
        player = asyncio.create_task(sink.play(track))
        await _wait_for_speaker_running(sink)
        with MonitorClock(SPEAKER_MONITOR) as monitor:
            await until(lambda: len(monitor.blocks) > 20)
            track.put_samples(tone(440.0, 0.2))
            await until(lambda: bool(monitor.loud_times()))
            sink.flush()
            flushed = time.monotonic()
            await until(lambda: monitor.blocks[-1][0] > flushed + 0.3)
        track.queue.put_nowait(None)
        await player
    loud = monitor.loud_times()
    assert loud[-1] - flushed < FLUSH_BOUND_SECONDS
    # The tone was cut: far less than its 200 ms was heard.
    assert len(loud) * 0.005 < 0.15
    assert sink.stats.flushes == 1


@pytest.mark.parametrize("mode", list(DuplexMode))
async def test_echo_gate_follows_the_speaker(
    backend: AudioBackend, mode: DuplexMode, tmp_path: Path
) -> None:
    """Half duplex sends silence while the sink plays (and a tail after); full duplex does not.

    Echo cancellation mutes only the first RESIDUAL_GUARD_SECONDS of the sink's playout.
    """
    gate = EchoGate(mode)
    loop = asyncio.get_running_loop()
    track = QueueTrack()
    frames: list[tuple[bool, float, int]] = []
    async with (
        await SpeakerSink.open(backend) as sink,
        await MicrophoneTrack.open(backend, gate=gate) as mic,
    ):

        async def record() -> None:
            """Record one frame, unless it is silence for a late device (a loaded machine)."""
            stalled = mic.stats.stalled_frames
            frame = await mic.recv()
            if mic.stats.stalled_frames == stalled:
                frames.append((sink.is_playing, rms(frame.to_ndarray()), frame.pts))

        unsubscribe = sink.add_playout_listener(gate.playout_changed)
        player = asyncio.create_task(sink.play(track))
        await _wait_for_speaker_running(sink)
        await _wait_for_device_audio(mic)
        talking = loop.run_in_executor(
            None, play_into_mic, write_wav(tmp_path / "mic.wav", tone(300.0, 1.5))
        )
        async with asyncio.timeout(5):
            while not frames or frames[-1][1] < LOUD_RMS:  # the user is heard
                await record()
            track.put_samples(tone(440.0, 0.4))  # the assistant answers over the user
            while len(frames) < 50:
                await record()
        await talking
        unsubscribe()
        track.queue.put_nowait(None)
        await player
    while_playing = [level for playing, level, _ in frames if playing]
    assert len(while_playing) >= 10
    if mode is DuplexMode.HALF:
        assert max(while_playing) == 0.0
        assert mic.stats.gated_frames >= len(while_playing)
    elif mode is DuplexMode.ECHO_CANCELLATION:
        # Muted at the start of playout only: the user is heard over the rest of it.
        assert 0 < mic.stats.gated_frames < len(while_playing)
        heard = [level > LOUD_RMS for level in while_playing]
        assert sum(heard) >= len(heard) - RESIDUAL_GUARD_SECONDS / 0.02 - 2
        assert heard[-1]
    else:
        assert min(while_playing) > LOUD_RMS
        assert mic.stats.gated_frames == 0
    steps = np.diff([pts for *_, pts in frames])
    assert np.all(steps > 0)
    assert np.all(steps % 960 == 0)  # whole frames; the stalled ones are left out


async def test_microphone_resamples_what_the_device_gives(tmp_path: Path) -> None:
    """A device opened at 44.1 kHz stereo still yields 20 ms frames of 48 kHz mono."""
    loop = asyncio.get_running_loop()
    backend = await loop.run_in_executor(None, create_backend, BackendName.PULSE)
    async with await MicrophoneTrack.open(backend, device_format=AudioFormat(44100, 2)) as mic:
        await _wait_for_device_audio(mic)
        talking = loop.run_in_executor(
            None, play_into_mic, write_wav(tmp_path / "mic.wav", tone(440.0, 1.0))
        )
        frames = [await mic.recv() for _ in range(60)]
        await talking
    assert {(f.samples, f.sample_rate, f.layout.name) for f in frames} == {(960, 48000, "mono")}
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    assert abs(dominant_hz(samples) - 440.0) < 5


@pytest.mark.parametrize("backend", [BackendName.PULSE], indirect=True)
async def test_lost_microphone_ends_the_track_with_a_typed_error(
    backend: AudioBackend, unplug: Callable[[str], None]
) -> None:
    """Unloading the mic's source ends the track with AudioDeviceLostError; threads are joined.

    libpulse only, for the reason given for the speaker below; PortAudio's loss is the next test.
    """
    lost: asyncio.Future[AudioDeviceError] = asyncio.get_running_loop().create_future()
    mic = await MicrophoneTrack.open(backend, MIC, on_device_lost=lost.set_result)
    try:
        await _wait_for_device_audio(mic)
        unplug(MIC)
        async with asyncio.timeout(5):
            error = await lost
        assert isinstance(error, AudioDeviceLostError)
        assert mic.error is error
        assert mic.readyState == "ended"
    finally:
        await mic.aclose()
    assert not _engine_threads()


@pytest.mark.parametrize("backend", [BackendName.SOUNDDEVICE], indirect=True)
async def test_a_portaudio_microphone_that_stops_is_lost(
    backend: AudioBackend, suspend_source: Callable[[str], None]
) -> None:
    """A PortAudio device whose callbacks stop ends the track with AudioDeviceLostError.

    That is what a USB microphone pulled from a Pi looks like to PortAudio on raw ALSA. Here
    PortAudio reaches PulseAudio through ALSA's pulse plugin, which moves a removed device's
    stream instead, so the stop is made by suspending the source: no more audio, no error.
    """
    lost: asyncio.Future[AudioDeviceError] = asyncio.get_running_loop().create_future()
    mic = await MicrophoneTrack.open(backend, on_device_lost=lost.set_result)
    try:
        await _wait_for_device_audio(mic)
        suspend_source(MIC)
        async with asyncio.timeout(5):
            error = await lost
        assert isinstance(error, AudioDeviceLostError)
        assert "moved no audio" in str(error)
        assert mic.error is error
        assert mic.readyState == "ended"
    finally:
        await mic.aclose()
    assert not _engine_threads()


@pytest.mark.parametrize("backend", [BackendName.PULSE], indirect=True)
async def test_lost_speaker_ends_play_with_a_typed_error(
    backend: AudioBackend, unplug: Callable[[str], None]
) -> None:
    """Unloading the speaker's sink makes play() raise AudioDeviceLostError; threads joined.

    libpulse only: PortAudio reaches PulseAudio through ALSA's "default" device, which does not
    disappear: PulseAudio moves the stream to the remaining sink and PortAudio plays on
    unaware. (A lost PortAudio device that stops calling back is covered by the microphone.)
    """
    track = QueueTrack()
    sink = await SpeakerSink.open(backend, SPEAKER)
    try:
        player = asyncio.create_task(sink.play(track))
        await _wait_for_speaker_running(sink)
        track.put_samples(tone(440.0, 0.2))
        await until(lambda: sink.is_playing)
        unplug(SPEAKER)
        async with asyncio.timeout(5):
            with pytest.raises(AudioDeviceLostError):
                await player
        assert not sink.is_playing
    finally:
        await sink.aclose()
    assert not _engine_threads()


async def test_closing_the_backend_releases_streams_left_open(backend: AudioBackend) -> None:
    """backend.close() closes what is still open (the path of a failed start); twice is fine."""
    loop = asyncio.get_running_loop()
    blocks: list[bytes] = []
    microphone = await loop.run_in_executor(
        None, backend.open_input, None, AudioFormat(), blocks.append, lambda _error: None
    )

    def silence(frames: int) -> bytes:
        return bytes(2 * frames)  # mono s16le

    speaker = await loop.run_in_executor(
        None, backend.open_output, None, AudioFormat(), silence, lambda _error: None
    )
    await until(lambda: bool(blocks))
    assert len(open_streams()) == 2

    await loop.run_in_executor(None, backend.close)
    assert open_streams() == []
    assert not _engine_threads()
    microphone.close()  # already closed by the backend: nothing happens
    speaker.close()
    await loop.run_in_executor(None, backend.close)


@pytest.mark.parametrize("backend", [BackendName.SOUNDDEVICE], indirect=True)
async def test_a_format_the_device_refuses_falls_back_to_its_own(backend: AudioBackend) -> None:
    """A PortAudio device that cannot record the format asked for opens in its own format.

    The AIY Voice HAT, for one, records stereo only; MicrophoneTrack resamples what it gets.
    Here the refusal is 64 channels, more than the device has.
    """
    blocks: list[bytes] = []
    asked = AudioFormat(channels=64)
    stream = await asyncio.get_running_loop().run_in_executor(
        None, backend.open_input, None, asked, blocks.append, lambda _error: None
    )
    try:
        await until(lambda: bool(blocks))
        assert stream.format != asked
        assert stream.format.channels in (1, 2)
        # A block is 20 ms in the format the device opened with.
        assert len(blocks[0]) == stream.format.bytes_per_second // 50
    finally:
        stream.close()
