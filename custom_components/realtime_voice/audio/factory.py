"""Load an audio backend by name, or the first that works here, and detect what each can see.

Apart from `backend.py`, which every backend imports: the factory imports the backends, never the
other way round. Importing a backend module is cheap; its library loads when one is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .backend import AudioBackend, AudioDeviceError, AudioError, BackendName, BackendStatus
from .pulse_backend import PulseBackend
from .sounddevice_backend import SoundDeviceBackend

if TYPE_CHECKING:
    from collections.abc import Iterable


def create_backend(name: BackendName) -> AudioBackend:
    """Load one backend, raising AudioLibraryMissingError if its library is missing."""
    if name is BackendName.PULSE:
        return PulseBackend()
    return SoundDeviceBackend()


def detect_backends(names: Iterable[BackendName] = tuple(BackendName)) -> list[BackendStatus]:
    """Try every backend and list what each can see; blocking."""
    return [_detect(name) for name in names]


def auto_backend() -> AudioBackend:
    """Return the first backend that works here: PulseAudio first, as Home Assistant OS has it."""
    errors: list[str] = []
    for name in (BackendName.PULSE, BackendName.SOUNDDEVICE):
        try:
            backend = create_backend(name)
            backend.list_devices()
        except AudioError as err:
            errors.append(f"{name}: {err}")
        else:
            return backend
    raise AudioDeviceError("no audio backend works here: " + "; ".join(errors))


def _detect(name: BackendName) -> BackendStatus:
    """Load one backend and list its devices, capturing the failure instead of raising."""
    try:
        backend = create_backend(name)
        devices = tuple(backend.list_devices())
    except AudioError as err:
        return BackendStatus(name, error=err)
    backend.close()
    return BackendStatus(name, devices)
