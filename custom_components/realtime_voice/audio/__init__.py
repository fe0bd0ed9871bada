"""Audio engine: microphone and speaker on real devices. No Home Assistant imports.

`backend` holds the backend protocol and errors; `pulse_backend` and `sounddevice_backend` reach
the devices; `factory` loads one by name and detects what each sees. `microphone` and `speaker`
bridge the devices to aiortc (imported from there, so that this package stays light; `frames`
holds what both share, `playout` the speaker's timing rules); `gate` keeps the assistant's voice
out of the microphone.
"""

from .backend import (
    DEFAULT_DEVICE,
    AudioBackend,
    AudioDevice,
    AudioDeviceError,
    AudioDeviceLostError,
    AudioError,
    AudioFormat,
    AudioLibraryMissingError,
    BackendName,
    BackendStatus,
    is_default,
)
from .factory import auto_backend, create_backend, detect_backends
from .gate import ECHO_TAIL_SECONDS, DuplexMode, EchoGate

__all__ = [
    "DEFAULT_DEVICE",
    "ECHO_TAIL_SECONDS",
    "AudioBackend",
    "AudioDevice",
    "AudioDeviceError",
    "AudioDeviceLostError",
    "AudioError",
    "AudioFormat",
    "AudioLibraryMissingError",
    "BackendName",
    "BackendStatus",
    "DuplexMode",
    "EchoGate",
    "auto_backend",
    "create_backend",
    "detect_backends",
    "is_default",
]
