"""AudioLink: the box's microphone and speaker for one conversation, opened the Home Assistant way.

The audio engine (`audio/`) knows nothing of Home Assistant; this module picks the backend the
user chose, opens and closes devices in the executor, runs the speaker as a task of Home
Assistant, so that nothing blocks the event loop, and settles the duplex mode: echo cancellation
falls back to half duplex, with a repair issue, when it cannot run here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
import time
from typing import TYPE_CHECKING, Any, Final

from aiortc import MediaStreamTrack
from homeassistant.core import HomeAssistant

from .audio import (
    AudioBackend,
    AudioDevice,
    AudioDeviceError,
    AudioError,
    BackendName,
    DuplexMode,
    EchoGate,
    auto_backend,
    create_backend,
)
from .audio.clip import Clip, play_clip
from .audio.echo import (
    EchoCancellationUnavailableError,
    EchoReference,
    MicrophoneProcessor,
    ProcessingOptions,
    check_library,
)
from .audio.microphone import MicrophoneTrack
from .audio.speaker import SpeakerSink
from .const import AudioBackendChoice, Box
from .translated_errors import note_echo_cancellation

if TYPE_CHECKING:
    from .settings import SessionSettings

type DeviceLostHandler = Callable[[AudioDeviceError], None]
type DeviceLabels = dict[str, str]
"""Device name (what the backend opens) to the label a person reads."""
type TaskStarter = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


@dataclass(frozen=True, slots=True)
class AudioSettings:
    """Which devices to open, and how the microphone treats the assistant's voice."""

    backend: AudioBackendChoice
    input_device: str | None
    output_device: str | None
    duplex: DuplexMode
    noise_suppression: bool = True
    high_pass_filter: bool = True

    @classmethod
    def from_settings(cls, settings: SessionSettings) -> AudioSettings:
        """Take the audio part of a box's settings."""
        return cls(
            settings.audio_backend,
            settings.input_device,
            settings.output_device,
            settings.duplex,
            settings.noise_suppression,
            settings.high_pass_filter,
        )

    @property
    def processing(self) -> ProcessingOptions:
        """Return what the microphone's audio should go through."""
        return ProcessingOptions(
            self.duplex is DuplexMode.ECHO_CANCELLATION,
            self.noise_suppression,
            self.high_pass_filter,
        )


def _available_processing(wanted: ProcessingOptions) -> tuple[ProcessingOptions, str | None]:
    """Return the processing this system can run, and why echo cancellation cannot; blocking."""
    if not wanted.any:
        return wanted, None
    try:
        check_library()
    except EchoCancellationUnavailableError as err:
        nothing = ProcessingOptions(
            echo_cancellation=False, noise_suppression=False, high_pass_filter=False
        )
        return nothing, str(err)
    return wanted, None


def _load_backend(choice: AudioBackendChoice) -> AudioBackend:
    """Load the chosen backend, or the first that works; blocking."""
    if choice is AudioBackendChoice.AUTO:
        return auto_backend()
    return create_backend(BackendName(choice.value))


PLAYED_OUT_POLL_SECONDS: Final = 0.02
"""How often a wait for the speaker to play out looks (one frame)."""


class AudioLink:
    """An open microphone track, a speaker sink and the echo gate between them."""

    def __init__(
        self,
        hass: HomeAssistant,
        backend: AudioBackend,
        *,
        microphone: MicrophoneTrack,
        speaker: SpeakerSink,
        gate: EchoGate,
        start_task: TaskStarter,
    ) -> None:
        """Hold open devices; use async_open()."""
        self.mode = gate.mode
        """The duplex mode in force: echo cancellation may have fallen back to half duplex."""
        self.hass = hass
        self._start_task = start_task
        self.backend = backend
        self.microphone = microphone
        self.speaker = speaker
        self.gate = gate
        self._player: asyncio.Task[None] | None = None
        self._unlisten = speaker.add_playout_listener(gate.playout_changed)

    @classmethod
    async def async_open(
        cls,
        hass: HomeAssistant,
        settings: AudioSettings,
        on_device_lost: DeviceLostHandler,
        start_task: TaskStarter,
        *,
        box: Box,
    ) -> AudioLink:
        """Open the speaker and the microphone; release both if either fails."""
        backend = await hass.async_add_executor_job(_load_backend, settings.backend)
        options, unavailable = await hass.async_add_executor_job(
            _available_processing, settings.processing
        )
        reference = EchoReference() if options.echo_cancellation else None
        speaker: SpeakerSink | None = None
        try:
            speaker = await SpeakerSink.open(
                backend,
                settings.output_device,
                echo_reference=reference,
                on_device_lost=on_device_lost,
            )
            if options.echo_cancellation and speaker.latency is None:
                unavailable = "the speaker does not report its latency"
                options = replace(options, echo_cancellation=False)
            gate = EchoGate(_mode(settings.duplex, options))
            microphone = await MicrophoneTrack.open(
                backend,
                settings.input_device,
                gate=gate,
                processor=MicrophoneProcessor(options, reference) if options.any else None,
                on_device_lost=on_device_lost,
                encode=True,
            )
        except BaseException:
            if speaker is not None:
                await speaker.aclose()
            await hass.async_add_executor_job(backend.close)
            raise
        if settings.duplex is DuplexMode.ECHO_CANCELLATION:
            note_echo_cancellation(hass, box, unavailable)
        return cls(
            hass,
            backend,
            microphone=microphone,
            speaker=speaker,
            gate=gate,
            start_task=start_task,
        )

    def play(self, track: MediaStreamTrack) -> None:
        """Play the assistant's track on the speaker until it ends."""
        self._player = self._start_task(self._play(track), "speaker")

    async def _play(self, track: MediaStreamTrack) -> None:
        # A failed device is reported through on_device_lost; the task just ends.
        with suppress(AudioDeviceError):
            await self.speaker.play(track)

    def flush(self) -> None:
        """Silence the speaker now (barge-in, cancel)."""
        self.speaker.flush()

    async def async_played_out(self, seconds: float) -> bool:
        """Wait, at most seconds, until the speaker has played what it holds; return whether.

        What the server finished sending can still be in the sink: on a busy machine the playout
        holds more (up to its hold bound) rather than dropping it, and closing now would cut it.
        """
        deadline = time.monotonic() + seconds
        while self.speaker.is_playing or self.speaker.queued_seconds > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(PLAYED_OUT_POLL_SECONDS)
        return True

    def assistant_speaking(self, *, speaking: bool) -> None:
        """Follow the server's output_audio_buffer events for the echo gate."""
        if speaking:
            self.gate.assistant_started()
        else:
            self.gate.assistant_stopped()

    async def async_close(self) -> None:
        """Stop playing and release both devices, in the executor."""
        self._unlisten()
        if self._player is not None:
            self._player.cancel()
            with suppress(asyncio.CancelledError):
                await self._player
        try:
            await self.microphone.aclose()
        finally:
            await self.speaker.aclose()
            await self.hass.async_add_executor_job(self.backend.close)

    def diagnostics(self) -> dict[str, Any]:
        """Return the counters of both devices and of the microphone's processing."""
        processor = self.microphone.processor
        return {
            "backend": self.backend.name,
            "mode": self.mode,
            "microphone": asdict(self.microphone.stats),
            "speaker": asdict(self.speaker.stats),
            "processing": asdict(processor.stats) if processor is not None else None,
        }


async def async_play_clip(hass: HomeAssistant, settings: AudioSettings, clip: Clip) -> None:
    """Play a sound clip on the box's speaker alone (no microphone, no call)."""
    backend = await hass.async_add_executor_job(_load_backend, settings.backend)
    try:
        await play_clip(backend, settings.output_device, clip)
    finally:
        await hass.async_add_executor_job(backend.close)


def _mode(duplex: DuplexMode, options: ProcessingOptions) -> DuplexMode:
    """Return the gate's mode: echo cancellation only where it runs, else half duplex."""
    if duplex is DuplexMode.FULL:
        return DuplexMode.FULL
    if duplex is DuplexMode.ECHO_CANCELLATION and options.echo_cancellation:
        return DuplexMode.ECHO_CANCELLATION
    return DuplexMode.HALF


async def async_list_devices(
    hass: HomeAssistant, choice: AudioBackendChoice
) -> tuple[DeviceLabels, DeviceLabels]:
    """Return the input and the output devices the backend sees (none if it fails)."""

    def list_devices() -> tuple[DeviceLabels, DeviceLabels]:
        try:
            backend = _load_backend(choice)
        except AudioError:
            return {}, {}
        try:
            devices = backend.list_devices()
        except AudioError:
            devices = []
        finally:
            backend.close()
        return (
            _labels(device for device in devices if device.is_input),
            _labels(device for device in devices if device.is_output),
        )

    return await hass.async_add_executor_job(list_devices)


def _labels(devices: Iterable[AudioDevice]) -> DeviceLabels:
    """Name each device as people know it (PulseAudio's description, PortAudio's name)."""
    return {device.name: device.description or device.name for device in devices}
