"""Blocking PulseAudio streams through libpulse-simple, loaded with ctypes.

Home Assistant OS and Container ship libpulse but not PortAudio, so this is the audio path that
works there. Every call blocks: run them in an executor or a device thread, never on the loop.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

# Explicit sonames: find_library() needs gcc or ldconfig, which the Home Assistant images lack.
LIBPULSE_SIMPLE: Final = "libpulse-simple.so.0"
LIBPULSE: Final = "libpulse.so.0"

_PA_SAMPLE_S16LE: Final = 3
_DEFAULT: Final = 0xFFFFFFFF  # (uint32_t) -1: let the server choose


class PulseError(Exception):
    """A libpulse call failed; the message is PulseAudio's own."""


class PulseLibraryMissing(PulseError):  # noqa: N818 - reads as the condition it reports
    """libpulse-simple cannot be loaded on this system."""


class Direction(IntEnum):
    """pa_stream_direction_t."""

    PLAYBACK = 1
    RECORD = 2


class _SampleSpec(ctypes.Structure):
    _fields_ = (
        ("format", ctypes.c_int),
        ("rate", ctypes.c_uint32),
        ("channels", ctypes.c_uint8),
    )


class _BufferAttr(ctypes.Structure):
    _fields_ = (
        ("maxlength", ctypes.c_uint32),
        ("tlength", ctypes.c_uint32),
        ("prebuf", ctypes.c_uint32),
        ("minreq", ctypes.c_uint32),
        ("fragsize", ctypes.c_uint32),
    )


@dataclass(frozen=True, slots=True)
class _Library:
    simple: ctypes.CDLL
    pulse: ctypes.CDLL


_library: _Library | None = None


def load_library() -> _Library:
    """Load libpulse-simple once, raising PulseLibraryMissing if it is absent."""
    global _library  # noqa: PLW0603 - one process-wide handle, like ctypes.util caches
    if _library is None:
        try:
            simple = ctypes.CDLL(LIBPULSE_SIMPLE)
            pulse = ctypes.CDLL(LIBPULSE)
        except OSError as err:
            msg = f"{LIBPULSE_SIMPLE} is not installed (Debian package libpulse0): {err}"
            raise PulseLibraryMissing(msg) from err
        _declare(simple, pulse)
        _library = _Library(simple, pulse)
    return _library


def _declare(simple: ctypes.CDLL, pulse: ctypes.CDLL) -> None:
    """Give ctypes the C signatures, so pointers are not truncated to int."""
    simple.pa_simple_new.restype = ctypes.c_void_p
    simple.pa_simple_new.argtypes = (
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(_SampleSpec),
        ctypes.c_void_p,
        ctypes.POINTER(_BufferAttr),
        ctypes.POINTER(ctypes.c_int),
    )
    for name in ("pa_simple_read", "pa_simple_write"):
        function = getattr(simple, name)
        function.restype = ctypes.c_int
        function.argtypes = (
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_int),
        )
    for name in ("pa_simple_drain", "pa_simple_flush"):
        function = getattr(simple, name)
        function.restype = ctypes.c_int
        function.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_int))
    simple.pa_simple_get_latency.restype = ctypes.c_uint64
    simple.pa_simple_get_latency.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_int))
    simple.pa_simple_free.restype = None
    simple.pa_simple_free.argtypes = (ctypes.c_void_p,)
    pulse.pa_strerror.restype = ctypes.c_char_p
    pulse.pa_strerror.argtypes = (ctypes.c_int,)


class PulseStream:
    """One blocking s16le stream to or from a PulseAudio device."""

    def __init__(
        self,
        direction: Direction,
        *,
        device: str | None = None,
        rate: int = 48000,
        channels: int = 1,
        latency_ms: int = 20,
        app_name: str = "Realtime Voice",
    ) -> None:
        """Open the stream with a server-side buffer of about latency_ms."""
        self._lib = load_library()
        self.direction = direction
        spec = _SampleSpec(_PA_SAMPLE_S16LE, rate, channels)
        attr = _buffer_attr(direction, rate * channels * 2 * latency_ms // 1000)
        error = ctypes.c_int(0)
        handle = self._lib.simple.pa_simple_new(
            None,
            app_name.encode(),
            direction,
            device.encode() if device else None,
            b"playback" if direction is Direction.PLAYBACK else b"record",
            ctypes.byref(spec),
            None,
            ctypes.byref(attr),
            ctypes.byref(error),
        )
        if not handle:
            raise PulseError(self._message("open", error.value))
        self._handle: int | None = handle

    def read(self, size: int) -> bytes:
        """Block until size bytes were recorded and return them."""
        buffer = ctypes.create_string_buffer(size)
        self._check("read", self._lib.simple.pa_simple_read, buffer, size)
        return buffer.raw

    def write(self, data: bytes) -> None:
        """Block until data is queued for playback."""
        self._check("write", self._lib.simple.pa_simple_write, data, len(data))

    def drain(self) -> None:
        """Block until everything written has been played."""
        self._check("drain", self._lib.simple.pa_simple_drain)

    def flush(self) -> None:
        """Drop everything queued for playback but not yet played."""
        self._check("flush", self._lib.simple.pa_simple_flush)

    def latency_us(self) -> int:
        """Return the stream's current latency in microseconds (echo cancellation aligns by it)."""
        error = ctypes.c_int(0)
        value = int(
            self._lib.simple.pa_simple_get_latency(self._require_open(), ctypes.byref(error))
        )
        if error.value:
            raise PulseError(self._message("latency", error.value))
        return value

    def close(self) -> None:
        """Free the stream; safe to call more than once."""
        if self._handle is not None:
            self._lib.simple.pa_simple_free(self._handle)
            self._handle = None

    def _check(self, what: str, function: ctypes._NamedFuncPointer, *args: object) -> None:
        """Call a libpulse-simple function and raise PulseError if it failed."""
        error = ctypes.c_int(0)
        if function(self._require_open(), *args, ctypes.byref(error)) < 0:
            raise PulseError(self._message(what, error.value))

    def _require_open(self) -> int:
        if self._handle is None:
            raise PulseError("stream is closed")
        return self._handle

    def _message(self, what: str, code: int) -> str:
        reason = self._lib.pulse.pa_strerror(code) or b"unknown error"
        return f"PulseAudio {what} failed: {reason.decode(errors='replace')}"


def _buffer_attr(direction: Direction, latency_bytes: int) -> _BufferAttr:
    """Bound the server buffer so playback and capture stay close to real time.

    Left to the server, a record stream's fragment is about two seconds, and a fresh source
    delivers silence for the first of them.
    """
    if direction is Direction.PLAYBACK:
        return _BufferAttr(_DEFAULT, latency_bytes, _DEFAULT, _DEFAULT, _DEFAULT)
    return _BufferAttr(_DEFAULT, _DEFAULT, _DEFAULT, _DEFAULT, latency_bytes)
