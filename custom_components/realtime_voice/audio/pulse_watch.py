"""Notice a named PulseAudio device going away, told by the server instead of asking it.

PulseAudio moves the streams of a removed device to the fallback device, and libpulse-simple
cannot ask it not to (PA_STREAM_DONT_MOVE), so a stream on a named device must learn of the
removal some other way. Listing every device twice a second took a new server connection each
time; one connection subscribed to source and sink events costs nothing until one happens.

One thread per backend runs a pa_mainloop that sleeps in poll() until the server says something.
The stream threads only read which devices are gone.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from .libpulse import PulseError
from .pulse_devices import (
    SUBSCRIBE_CALLBACK,
    SUCCESS_CALLBACK,
    connect_context,
    declare,
    indexed_devices,
)

_LOGGER = logging.getLogger(__name__)

_SUBSCRIPTION_MASK_SINK: Final = 0x0001
_SUBSCRIPTION_MASK_SOURCE: Final = 0x0002
_FACILITY_MASK: Final = 0x000F
_FACILITY_SINK: Final = 0
_FACILITY_SOURCE: Final = 1
_TYPE_MASK: Final = 0x0030
_TYPE_REMOVE: Final = 0x0020
_CONTEXT_READY: Final = 4
_JOIN_SECONDS: Final = 2.0


class DeviceWatch:
    """Knows which of the server's sources and sinks at its start were removed since.

    One per stream on a named device, started just after the stream opened it: a device added
    later is not known, and need not be. Start with start(), stop with close().
    """

    def __init__(self) -> None:
        self._pulse = declare()
        self._mainloop = self._pulse.pa_mainloop_new()
        self._context = self._pulse.pa_context_new(
            self._pulse.pa_mainloop_get_api(self._mainloop), b"Realtime Voice watch"
        )
        self._indexes: dict[tuple[bool, int], str] = {}
        self._present: set[tuple[bool, str]] = set()
        self._failed = False
        self._stopping = False
        # Kept referenced for as long as the context may call them.
        self._on_event = SUBSCRIBE_CALLBACK(self._event)
        self._on_subscribed = SUCCESS_CALLBACK(lambda *_: None)
        self._thread = threading.Thread(target=self._run, name="realtime_voice pulse watch")

    def start(self) -> None:
        """Connect, learn the devices and subscribe, then wait for events on a thread.

        Raises PulseError if the server cannot be reached.
        """
        try:
            connect_context(self._pulse, self._mainloop, self._context)
            for is_source, name, index in indexed_devices(
                self._pulse, self._mainloop, self._context
            ):
                self._indexes[is_source, index] = name
                self._present.add((is_source, name))
            self._subscribe()
        except BaseException:
            self._free()
            raise
        self._thread.start()

    def _subscribe(self) -> None:
        """Ask the server for source and sink events (answered on the watch thread)."""
        self._pulse.pa_context_set_subscribe_callback(self._context, self._on_event, None)
        operation = self._pulse.pa_context_subscribe(
            self._context,
            _SUBSCRIPTION_MASK_SINK | _SUBSCRIPTION_MASK_SOURCE,
            self._on_subscribed,
            None,
        )
        if not operation:
            raise PulseError("PulseAudio refused the subscription")
        self._pulse.pa_operation_unref(operation)

    def is_present(self, *, is_source: bool, name: str) -> bool:
        """Return whether the device was there at the start and has not gone since."""
        return not self._failed and (is_source, name) in self._present

    def close(self) -> None:
        """Stop the thread and disconnect; safe to call more than once."""
        self._stopping = True
        if self._thread.is_alive():
            self._pulse.pa_mainloop_wakeup(self._mainloop)
            self._thread.join(_JOIN_SECONDS)
            if self._thread.is_alive():
                _LOGGER.warning("PulseAudio device watch did not stop in time")
                return
        self._free()

    def _run(self) -> None:
        """Sleep in poll() until the server sends something (or close() wakes it up)."""
        pulse = self._pulse
        while not self._stopping:
            if (
                pulse.pa_mainloop_prepare(self._mainloop, -1) < 0
                or pulse.pa_mainloop_poll(self._mainloop) < 0
                or pulse.pa_mainloop_dispatch(self._mainloop) < 0
                or pulse.pa_context_get_state(self._context) != _CONTEXT_READY
            ):
                if not self._stopping:
                    _LOGGER.debug("PulseAudio device watch lost the server")
                self._failed = True  # every named device counts as gone
                return

    def _event(self, _context: int, kind: int, index: int, _user: int) -> None:
        """Forget a device the server removed (on the watch thread)."""
        facility = kind & _FACILITY_MASK
        if kind & _TYPE_MASK != _TYPE_REMOVE or facility not in {_FACILITY_SINK, _FACILITY_SOURCE}:
            return
        is_source = facility == _FACILITY_SOURCE
        if (name := self._indexes.pop((is_source, index), None)) is not None:
            self._present.discard((is_source, name))

    def _free(self) -> None:
        """Disconnect and free the context and the loop, once."""
        if self._context:
            self._pulse.pa_context_disconnect(self._context)
            self._pulse.pa_context_unref(self._context)
            self._pulse.pa_mainloop_free(self._mainloop)
            self._context = self._mainloop = None
