"""The PulseAudio virtual devices that scripts/test starts (scripts/virtual-audio.sh).

`mic_feed` is a sink whose monitor is remapped to the source `mic` (the default microphone), so a
WAV played into `mic_feed` is what the integration hears; `speaker` is the default sink, and
`speaker.monitor` records what the integration played. acoustic_echo() adds the path a box on a
shelf has: what the speaker plays comes back into the microphone, later and quieter.
"""

from __future__ import annotations

from contextlib import contextmanager
import os
from pathlib import Path
import select
import subprocess
import time
from typing import TYPE_CHECKING
import wave

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

RATE = 48000
MIC = "mic"
MIC_FEED = "mic_feed"
SPEAKER = "speaker"
SPEAKER_MONITOR = "speaker.monitor"
STREAM_SETTLE = 2.5
"""A new stream on a PulseAudio null sink moves no audio for about 2 s, and stalls the streams
already playing there as long (the bench's speaker took nothing for 1.6 s after a recorder of
speaker.monitor started)."""
KEEPALIVE_CLIENT = "realtime-voice-keepalive"
ECHO_HEARD_RMS = 100.0
ECHO_LEVELS_DB = (-6.0, -20.0)
"""The echo levels the tests use: a speaker next to the microphone, and one a hand away."""
RECORDER_START_SECONDS = 10
"""How long parec may take to deliver its first audio (well under a second when idle)."""
"""The client name of busy_devices()' streams, which open_streams() leaves out."""


def require_virtual_audio() -> None:
    """Fail (not skip) when the run has no virtual devices: scripts/test starts them."""
    if not os.environ.get("REALTIME_VOICE_VIRTUAL_AUDIO"):
        msg = "no PulseAudio virtual devices: run the tests with scripts/test"
        raise RuntimeError(msg)


def tone(hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    """Return a mono int16 sine tone at RATE."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """Write mono int16 samples at RATE as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())
    return path


def speech_wav(path: Path, text: str) -> Path:
    """Speak text with espeak-ng into a WAV file (22.05 kHz mono)."""
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    return path


def play_into_mic(path: Path) -> None:
    """Play a WAV into the virtual microphone and wait until it has been played."""
    subprocess.run(["paplay", f"--device={MIC_FEED}", str(path)], check=True)


@contextmanager
def recording(device: str = SPEAKER_MONITOR) -> Iterator[list[np.ndarray]]:
    """Record a PulseAudio source (mono int16 at RATE) for the duration of the block.

    The list it yields receives one array with everything recorded when the block ends.
    """
    process = subprocess.Popen(
        [
            "parec",
            f"--device={device}",
            "--raw",
            "--format=s16le",
            f"--rate={RATE}",
            "--channels=1",
            "--latency-msec=10",
        ],
        stdout=subprocess.PIPE,
    )
    result: list[np.ndarray] = []
    first = b""
    try:
        # parec takes a while to start on a loaded machine: what is played before it records
        # is lost, so the block starts once its first audio (the sinks are kept awake) is out.
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], RECORDER_START_SECONDS)
        assert ready, f"parec recorded nothing within {RECORDER_START_SECONDS} s"
        first = os.read(process.stdout.fileno(), 65536)
        yield result
    finally:
        process.terminate()
        data, _ = process.communicate(timeout=5)
        result.append(np.frombuffer(first + data, dtype=np.int16))


def rms(samples: np.ndarray) -> float:
    """Return the root mean square of int16 samples, 0 for no samples."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def dominant_hz(samples: np.ndarray, rate: int = RATE) -> float:
    """Return the strongest frequency in the samples."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


@contextmanager
def busy_devices() -> Iterator[None]:
    """Keep the virtual sinks running at a low latency for the block, as a sound card does.

    An idle null sink sleeps up to 2 s at a time, so a stream opened on it blocks its first read
    or write (and its close) about that long. Silence played into `speaker` and `mic_feed` at
    20 ms keeps both awake; open_streams() does not count these streams.
    """
    players = [
        subprocess.Popen(
            [
                "pacat",
                "--playback",
                f"--client-name={KEEPALIVE_CLIENT}",
                "--latency-msec=20",
                f"--device={device}",
                "/dev/zero",
            ]
        )
        for device in (SPEAKER, MIC_FEED)
    ]
    try:
        deadline = time.monotonic() + 5
        while len(_keepalive_clients()) < len(players) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield
    finally:
        for player in players:
            player.terminate()
            player.wait(timeout=5)


@contextmanager
def acoustic_echo(gain_db: float, delay_ms: int = 40) -> Iterator[None]:
    """Play what `speaker` plays into `mic_feed` too, delay_ms later at gain_db: an echo path.

    module-loopback records speaker.monitor and plays it into mic_feed, where it mixes with
    whatever else plays there (the user's voice); its stream's volume sets the gain. Measured
    here: 40-50 ms from speaker to mic with latency_msec=40. Unloaded at the end.
    """
    index = _pactl(
        "load-module",
        "module-loopback",
        f"source={SPEAKER_MONITOR}",
        f"sink={MIC_FEED}",
        f"latency_msec={delay_ms}",
        "source_dont_move=true",
        "sink_dont_move=true",
    ).strip()
    try:
        # A plain factor is linear amplitude to pactl; "-6dB" would read as an option.
        factor = f"{10 ** (gain_db / 20):.4f}"
        _pactl("set-sink-input-volume", _stream_of_module(index), factor)
        _wait_for_echo()
        yield
    finally:
        _pactl("unload-module", index)


def _wait_for_echo(timeout: float = 5.0) -> None:
    """Beep on the speaker until the microphone hears it: a new loopback takes a while to run."""
    from custom_components.realtime_voice.audio.libpulse import (  # noqa: PLC0415 - tests only
        Direction,
        PulseStream,
    )

    beep = tone(1000.0, 0.02).tobytes()
    speaker = PulseStream(Direction.PLAYBACK, device=SPEAKER, latency_ms=20)
    mic = PulseStream(Direction.RECORD, device=MIC, latency_ms=20)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            speaker.write(beep)
            if rms(np.frombuffer(mic.read(len(beep)), dtype=np.int16)) > ECHO_HEARD_RMS:
                return
        msg = f"the echo path did not carry sound within {timeout} s"
        raise RuntimeError(msg)
    finally:
        speaker.close()
        mic.close()


def _stream_of_module(module: str) -> str:
    """Return the index of the sink input a module owns."""
    listing = _pactl("list", "sink-inputs")
    for block in listing.split("Sink Input #")[1:]:
        if f"Owner Module: {module}\n" in block:
            return block.split("\n", 1)[0].strip()
    msg = f"module {module} has no sink input"
    raise RuntimeError(msg)


def _pactl(*arguments: str) -> str:
    """Run pactl and return what it printed."""
    return subprocess.run(["pactl", *arguments], capture_output=True, text=True, check=True).stdout


def _keepalive_clients() -> set[str]:
    """Return the PulseAudio client indexes of busy_devices()' players."""
    listing = subprocess.run(
        ["pactl", "list", "clients"], capture_output=True, text=True, check=True
    ).stdout
    return {
        block.split("\n", 1)[0].strip()
        for block in listing.split("Client #")[1:]
        if f'application.name = "{KEEPALIVE_CLIENT}"' in block
    }


def open_streams() -> list[str]:
    """Return the recording and playback streams clients have open on the PulseAudio server.

    The virtual `mic` has a stream of its own on `mic_feed.monitor`, owned by no client; the
    players of busy_devices() are left out too.
    """
    streams: list[str] = []
    ignored = {"-", *_keepalive_clients()}
    for kind in ("source-outputs", "sink-inputs"):
        listing = subprocess.run(
            ["pactl", "list", "short", kind], capture_output=True, text=True, check=True
        )
        for line in listing.stdout.splitlines():
            fields = line.split("\t")
            if len(fields) > 2 and fields[2] not in ignored:
                streams.append(f"{kind}: {line}")
    return streams
