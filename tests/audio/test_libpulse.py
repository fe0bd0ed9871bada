"""The libpulse bindings on their own: what the server says, and streams after they close."""

from __future__ import annotations

from collections.abc import Callable
import socket
import threading
import time

import pytest

from custom_components.realtime_voice.audio.libpulse import Direction, PulseError, PulseStream
from custom_components.realtime_voice.audio.pulse_devices import list_pulse_devices
from custom_components.realtime_voice.audio.pulse_watch import DeviceWatch
from tests.helpers.virtual_audio import MIC, SPEAKER

pytestmark = pytest.mark.usefixtures("virtual_audio")


def test_devices_are_listed_with_their_descriptions() -> None:
    """The names a stream opens, with the descriptions people see in PulseAudio's tools."""
    sources, sinks = list_pulse_devices()
    assert (MIC, "Microphone") in sources
    assert (f"{SPEAKER}.monitor", "Monitor of Speaker") in sources
    assert (SPEAKER, "Speaker") in sinks


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("", "Invalid server"),  # refused before connecting
        ("tcp:127.0.0.1:1", "Connection refused"),  # fails while connecting
    ],
)
def test_a_server_that_cannot_be_reached_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, server: str, reason: str
) -> None:
    """A wrong PULSE_SERVER is reported with libpulse's reason, never a hang or a crash."""
    monkeypatch.setenv("PULSE_SERVER", server)
    with pytest.raises(PulseError, match=reason):
        list_pulse_devices()


@pytest.mark.usefixtures("socket_enabled")
def test_a_server_that_never_answers_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled server (it accepts, then says nothing) fails the listing after 3 s.

    So the config flow that asks for the devices does not hang with it.
    """
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen()
        monkeypatch.setenv("PULSE_SERVER", f"tcp:127.0.0.1:{stalled.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(PulseError, match="did not answer in time"):
            list_pulse_devices()
    # 3 s, and some slack for a busy machine: the bound is what matters, not the precision.
    assert 2.5 < time.monotonic() - started < 15


def test_a_device_the_server_does_not_have_is_refused_with_its_reason() -> None:
    with pytest.raises(PulseError, match=r"PulseAudio open failed: No such entity"):
        PulseStream(Direction.RECORD, device="no_such_source")


def test_a_closed_stream_refuses_work_and_closes_again_quietly() -> None:
    stream = PulseStream(Direction.PLAYBACK, device=SPEAKER)
    stream.write(bytes(1920))
    stream.close()
    stream.close()
    with pytest.raises(PulseError, match="stream is closed"):
        stream.write(bytes(1920))


def test_the_watch_hears_of_a_removed_device_at_once(
    unplug: Callable[[str], Callable[[], None]],
) -> None:
    """The server tells the watch a device went; the others stay; no listing, no polling."""
    watch = DeviceWatch()
    watch.start()
    try:
        assert watch.is_present(is_source=False, name=SPEAKER)
        assert watch.is_present(is_source=True, name=MIC)
        assert not watch.is_present(is_source=True, name=SPEAKER)  # a sink, not a source
        unplug(SPEAKER)
        deadline = time.monotonic() + 2
        while watch.is_present(is_source=False, name=SPEAKER) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not watch.is_present(is_source=False, name=SPEAKER)
        assert watch.is_present(is_source=True, name=MIC)
        threads = {thread.name for thread in threading.enumerate()}
        assert "realtime_voice pulse watch" in threads
    finally:
        watch.close()
        watch.close()
    assert "realtime_voice pulse watch" not in {t.name for t in threading.enumerate()}
