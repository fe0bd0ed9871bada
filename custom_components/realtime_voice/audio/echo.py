"""Echo cancellation: the speaker's own sound taken out of the microphone (WebRTC AEC3).

`pywebrtc-audio` runs WebRTC's audio processing module: AEC3, noise suppression and a high-pass
filter, in C++ with the GIL released, 10 ms at a time (a 20 ms frame is two of its frames).

AEC3 needs the far end (what the speaker played) next to the near end (what the microphone
recorded at the same moment), with the echo never earlier than its reference. EchoReference keeps
the far end as one continuous stream of samples on the clock of "when it is heard": the speaker's
device thread adds each block it takes, stamped with now plus the device's reported output
latency; the microphone asks for the samples heard while a frame was recorded, a little ahead
(REFERENCE_LEAD_SECONDS), waiting briefly for a speaker thread that is behind. Both sides stay
sample-continuous and only jump when the stamps disagree by more than REALIGN_SECONDS (a flush
drops queued audio, an underrun inserts silence), so AEC3 sees the room as a fixed delay it
tracks (up to about half a second).
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

import av
import numpy as np

from .backend import SAMPLE_RATE, AudioError, AudioFormat
from .own_registry import import_with_own_registry

if TYPE_CHECKING:
    import numpy.typing as npt

LIBRARY: Final = "pywebrtc_audio"
REFERENCE_LEAD_SECONDS: Final = 0.01
"""The far end is taken this much ahead of the microphone: a reference later than its echo
cancels nothing, an earlier one only costs AEC3 a few taps (it estimates the delay itself)."""
REALIGN_SECONDS: Final = 0.015
"""Stamps that disagree with the running stream by more than this may be a real jump."""
REALIGN_AFTER: Final = 3
"""Stamps in a row that must disagree the same way before a stream jumps: a flush or an
underrun moves every later stamp alike, a measurement gone wrong on a busy machine only one."""
REFERENCE_WAIT_SECONDS: Final = 0.04
"""How long the microphone waits for a speaker thread that is behind (a busy machine) before it
takes silence as the far end: a frame cleaned without its reference keeps all of its echo."""
HISTORY_SECONDS: Final = 1.0
"""Far end kept: more than the longest echo path AEC3 can follow."""

type Samples = npt.NDArray[np.int16]


class EchoCancellationUnavailableError(AudioError):
    """Echo cancellation cannot run here; the message says why."""


class _Processor(Protocol):
    """The part of pywebrtc_audio.AudioProcessor used here."""

    def process(self, near: Samples, far: Samples | None = None) -> Samples: ...


@dataclass(frozen=True, slots=True)
class ProcessingOptions:
    """What happens to the microphone's audio before it is sent."""

    echo_cancellation: bool = True
    noise_suppression: bool = True
    high_pass_filter: bool = True

    @property
    def any(self) -> bool:
        """Return whether there is anything to do."""
        return self.echo_cancellation or self.noise_suppression or self.high_pass_filter


@dataclass(frozen=True, slots=True)
class ProcessingStats:
    """What the microphone processing did so far, for diagnostics and the benchmark."""

    frames: int
    """Frames (20 ms) processed."""
    cpu_seconds: float
    """CPU time spent in the audio processing module."""
    speaker_realignments: int
    """Times the far end's stream jumped to follow the speaker (flushes, underruns)."""
    microphone_realignments: int
    """Times the microphone's place in the far end jumped to follow its stamps."""
    missing_reference_ms: float
    """Far end asked for but not played in time, taken as silence, in milliseconds."""


def check_library() -> None:
    """Import pywebrtc-audio (blocking: loads a native library) or say why it cannot be."""
    try:
        import_with_own_registry(LIBRARY)
    except ImportError as err:
        msg = f"pywebrtc-audio cannot be loaded ({err})"
        raise EchoCancellationUnavailableError(msg) from err


class EchoReference:
    """The far end: what the speaker played, by when it is heard. Threadsafe (one lock)."""

    def __init__(self, rate: int = SAMPLE_RATE) -> None:
        self._rate = rate
        self._realign = round(REALIGN_SECONDS * rate)
        self._samples = np.zeros(round(HISTORY_SECONDS * rate), dtype=np.int16)
        self._lock = threading.Lock()
        self._written_more = threading.Condition(self._lock)
        self._origin: float | None = None
        """When sample index 0 is heard (monotonic seconds)."""
        self._written = 0
        """Index after the newest sample played."""
        self._read: int | None = None
        """Index of the next sample the microphone takes."""
        self._writer = _Follower(self._realign)
        self._reader = _Follower(self._realign)
        self._to_mono: _MonoConverter | None = None
        self.missing = 0
        """Samples the microphone asked for that were not there."""

    def played(self, data: bytes, audio_format: AudioFormat, latency: float) -> None:
        """Add a block the speaker takes now and plays latency seconds later (device thread)."""
        if self._to_mono is None or self._to_mono.source != audio_format:
            self._to_mono = _MonoConverter(audio_format, self._rate)
        samples = self._to_mono.convert(data)
        heard_at = time.monotonic() + latency
        with self._lock:
            if self._origin is None:
                self._origin = heard_at - self._written / self._rate
            start = self._writer.follow(self._index(heard_at), self._written)
            self._silence(self._written, start)
            self._store(start, samples)
            self._written = start + samples.size
            self._written_more.notify_all()

    @property
    def realignments(self) -> tuple[int, int]:
        """Return how often the speaker's and the microphone's streams jumped."""
        return self._writer.jumps, self._reader.jumps

    def heard(self, since: float, count: int) -> Samples:
        """Return count samples heard from since on (microphone thread); silence if unknown."""
        with self._lock:
            if self._origin is None:
                return np.zeros(count, dtype=np.int16)
            wanted = self._index(since)
            self._read = wanted if self._read is None else self._reader.follow(wanted, self._read)
            start, self._read = self._read, self._read + count
            self._written_more.wait_for(
                lambda: self._written >= start + count, REFERENCE_WAIT_SECONDS
            )
            return self._load(start, count)

    def _index(self, at: float) -> int:
        """Return the index of the sample heard at a time (the origin is set by then)."""
        return round((at - (self._origin or 0.0)) * self._rate)

    def _silence(self, start: int, stop: int) -> None:
        """Zero the samples of a gap (the device played silence we did not give it)."""
        if stop > start:
            self._store(start, np.zeros(min(stop - start, self._samples.size), dtype=np.int16))

    def _store(self, start: int, samples: Samples) -> None:
        size = self._samples.size
        samples = samples[-size:]
        positions = np.arange(start, start + samples.size) % size
        self._samples[positions] = samples

    def _load(self, start: int, count: int) -> Samples:
        """Return samples [start, start + count), zeros where none was played or kept."""
        indexes = np.arange(start, start + count)
        present = (indexes < self._written) & (indexes >= self._written - self._samples.size)
        self.missing += int(count - np.count_nonzero(present))
        out = np.zeros(count, dtype=np.int16)
        out[present] = self._samples[indexes[present] % self._samples.size]
        return out


class _Follower:
    """Keeps a running position unless the stamps keep disagreeing with it, alike."""

    def __init__(self, tolerance: int) -> None:
        self._tolerance = tolerance
        self._offset = 0
        self._disagreements = 0
        self.jumps = 0

    def follow(self, stamped: int, running: int) -> int:
        """Return where the stream goes on: running, or stamped once it is clearly elsewhere."""
        offset = stamped - running
        if abs(offset) <= self._tolerance:
            self._disagreements = 0
            return running
        alike = self._disagreements and abs(offset - self._offset) <= self._tolerance
        self._disagreements = self._disagreements + 1 if alike else 1
        self._offset = offset
        if self._disagreements < REALIGN_AFTER:
            return running
        self._disagreements = 0
        self.jumps += 1
        return stamped


class _MonoConverter:
    """Turns a device's blocks into mono at the processing rate; one resampler per stream."""

    def __init__(self, source: AudioFormat, rate: int) -> None:
        self.source = source
        self._resampler = (
            None
            if source == AudioFormat(rate, 1)
            else av.AudioResampler(format="s16", layout="mono", rate=rate)
        )

    def convert(self, data: bytes) -> Samples:
        """Convert one block."""
        samples = np.frombuffer(data, dtype=np.int16)
        if self._resampler is None:
            return samples
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1),
            format="s16",
            layout="mono" if self.source.channels == 1 else "stereo",
        )
        frame.sample_rate = self.source.rate
        converted = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
        return np.concatenate(converted) if converted else np.zeros(0, dtype=np.int16)


class MicrophoneProcessor:
    """Echo cancellation, noise suppression and high-pass on 48 kHz mono frames. One thread."""

    def __init__(self, options: ProcessingOptions, reference: EchoReference | None) -> None:
        """Create the module (the library must load: see check_library)."""
        library = import_with_own_registry(LIBRARY)
        self.reference = reference if options.echo_cancellation else None
        self._processor: _Processor = library.AudioProcessor(
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            echo_cancellation=self.reference is not None,
            noise_suppression=options.noise_suppression,
            high_pass_filter=options.high_pass_filter,
            stream_delay_ms=round(1000 * REFERENCE_LEAD_SECONDS),
        )
        self._frames = 0
        self._cpu = 0.0

    @property
    def stats(self) -> ProcessingStats:
        """Return the counters so far."""
        reference = self.reference
        speaker, microphone = reference.realignments if reference else (0, 0)
        return ProcessingStats(
            self._frames,
            self._cpu,
            speaker,
            microphone,
            1000 * reference.missing / SAMPLE_RATE if reference else 0.0,
        )

    def process(self, frame: bytes, recorded_at: float) -> bytes:
        """Return the frame cleaned; recorded_at is when its first sample was recorded."""
        near = np.frombuffer(frame, dtype=np.int16)
        far = None
        if self.reference is not None:
            far = self.reference.heard(recorded_at + REFERENCE_LEAD_SECONDS, near.size)
        started = time.thread_time()
        cleaned = self._processor.process(near, far)
        self._cpu += time.thread_time() - started
        self._frames += 1
        return cleaned.tobytes()
