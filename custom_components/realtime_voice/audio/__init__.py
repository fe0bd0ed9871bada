"""Audio engine: microphone and speaker on real devices. No Home Assistant imports.

`backend` holds the backend protocol, errors and detection; `pulse_backend` and
`sounddevice_backend` reach the devices; `tracks` bridges them to aiortc (imported from there, so
that this package stays light); `gate` keeps the assistant's voice out of the microphone.
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
    auto_backend,
    create_backend,
    detect_backends,
    is_default,
)
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
