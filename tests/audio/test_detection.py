"""Which audio backends load here, what they see, and what a user is told when one cannot."""

from __future__ import annotations

import pytest

from custom_components.realtime_voice.audio import (
    AudioDeviceError,
    AudioLibraryMissingError,
    BackendName,
    auto_backend,
    create_backend,
    detect_backends,
    libpulse,
)
from tests.helpers.virtual_audio import MIC, SPEAKER

pytestmark = pytest.mark.usefixtures("virtual_audio")


def test_both_backends_are_detected_with_their_devices() -> None:
    """PulseAudio lists the virtual devices by name; PortAudio has a default device."""
    statuses = {status.name: status for status in detect_backends()}
    assert all(status.available for status in statuses.values())
    pulse = {device.name for device in statuses[BackendName.PULSE].devices}
    assert {MIC, SPEAKER} <= pulse
    portaudio = [device.name for device in statuses[BackendName.SOUNDDEVICE].devices]
    assert "default" in portaudio


def test_auto_picks_pulseaudio_first() -> None:
    """Automatic choice: PulseAudio (what Home Assistant OS has) when it works."""
    backend = auto_backend()
    try:
        assert backend.name is BackendName.PULSE
    finally:
        backend.close()


def test_a_missing_libpulse_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libpulse-simple: a typed error naming the package and the other backend.

    Simulated by asking ctypes for a soname that does not exist, which is what loading fails
    with on a system without the library; the real library stays untouched.
    """
    monkeypatch.setattr(libpulse, "LIBPULSE_SIMPLE", "libpulse-simple.so.999")
    monkeypatch.setattr(libpulse, "_library", None)
    with pytest.raises(AudioLibraryMissingError) as raised:
        create_backend(BackendName.PULSE)
    assert raised.value.backend is BackendName.PULSE
    assert "libpulse0" in str(raised.value)
    assert "sounddevice backend" in str(raised.value)
    [status] = detect_backends([BackendName.PULSE])
    assert not status.available
    assert isinstance(status.error, AudioLibraryMissingError)


def test_no_pulseaudio_server_falls_back_to_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    """PulseAudio unreachable: listing fails clearly, and automatic choice takes PortAudio."""
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/pulse/native")
    pulse = create_backend(BackendName.PULSE)
    try:
        with pytest.raises(AudioDeviceError, match="cannot list PulseAudio devices"):
            pulse.list_devices()
    finally:
        pulse.close()
    backend = auto_backend()
    try:
        assert backend.name is BackendName.SOUNDDEVICE
    finally:
        backend.close()
