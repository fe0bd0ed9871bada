"""List PulseAudio sources and sinks through libpulse's introspection API, loaded with ctypes.

libpulse-simple cannot list devices and `pactl` is not in the Home Assistant images, so this
speaks pa_context directly: connect, ask for the source and sink lists, disconnect. Blocking.
Only the stable head of pa_source_info / pa_sink_info (name, index, description) is declared:
callbacks receive a pointer, so reading a prefix of the struct is safe across versions.
"""

from __future__ import annotations

from collections.abc import Callable
import ctypes
import time
from typing import Final

from .libpulse import PulseError, load_library

_CONTEXT_NOAUTOSPAWN: Final = 1
_CONTEXT_READY: Final = 4
_CONTEXT_FAILED: Final = 5
_CONTEXT_TERMINATED: Final = 6
_OPERATION_RUNNING: Final = 0
_POLL_STEP_US: Final = 50_000
_TIMEOUT_SECONDS: Final = 3.0


class _InfoHead(ctypes.Structure):
    """The first fields of pa_source_info and pa_sink_info, which are laid out alike."""

    _fields_ = (
        ("name", ctypes.c_char_p),
        ("index", ctypes.c_uint32),
        ("description", ctypes.c_char_p),
    )


_INFO_CALLBACK = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.POINTER(_InfoHead), ctypes.c_int, ctypes.c_void_p
)

SUBSCRIBE_CALLBACK = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p
)
SUCCESS_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)

type DeviceList = list[tuple[str, str]]
"""(name, description) pairs."""


def declare() -> ctypes.CDLL:
    """Return libpulse, loaded once with libpulse-simple, with the introspection calls declared.

    Declared at every use: cheap, and right even for a library loaded anew.
    """
    pulse = load_library().pulse
    _declare(pulse)
    return pulse


def _declare(pulse: ctypes.CDLL) -> None:
    """Give ctypes the C signatures, so pointers are not truncated to int."""
    void_p = ctypes.c_void_p
    signatures: dict[str, tuple[object, tuple[object, ...]]] = {
        "pa_mainloop_new": (void_p, ()),
        "pa_mainloop_get_api": (void_p, (void_p,)),
        "pa_mainloop_prepare": (ctypes.c_int, (void_p, ctypes.c_int)),
        "pa_mainloop_poll": (ctypes.c_int, (void_p,)),
        "pa_mainloop_dispatch": (ctypes.c_int, (void_p,)),
        "pa_mainloop_free": (None, (void_p,)),
        "pa_mainloop_wakeup": (None, (void_p,)),
        "pa_context_set_subscribe_callback": (None, (void_p, SUBSCRIBE_CALLBACK, void_p)),
        "pa_context_subscribe": (void_p, (void_p, ctypes.c_uint32, SUCCESS_CALLBACK, void_p)),
        "pa_context_new": (void_p, (void_p, ctypes.c_char_p)),
        "pa_context_connect": (ctypes.c_int, (void_p, ctypes.c_char_p, ctypes.c_int, void_p)),
        "pa_context_get_state": (ctypes.c_int, (void_p,)),
        "pa_context_errno": (ctypes.c_int, (void_p,)),
        "pa_context_disconnect": (None, (void_p,)),
        "pa_context_unref": (None, (void_p,)),
        "pa_context_get_source_info_list": (void_p, (void_p, _INFO_CALLBACK, void_p)),
        "pa_context_get_sink_info_list": (void_p, (void_p, _INFO_CALLBACK, void_p)),
        "pa_operation_get_state": (ctypes.c_int, (void_p,)),
        "pa_operation_unref": (None, (void_p,)),
        "pa_strerror": (ctypes.c_char_p, (ctypes.c_int,)),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(pulse, name)
        function.restype = restype
        function.argtypes = argtypes


def list_pulse_devices() -> tuple[DeviceList, DeviceList]:
    """Return the server's (sources, sinks); raise PulseError if it cannot be reached."""
    pulse = declare()
    mainloop = pulse.pa_mainloop_new()
    context = pulse.pa_context_new(pulse.pa_mainloop_get_api(mainloop), b"Realtime Voice")
    try:
        connect_context(pulse, mainloop, context)
        sources = _query(pulse, mainloop, context, pulse.pa_context_get_source_info_list)
        sinks = _query(pulse, mainloop, context, pulse.pa_context_get_sink_info_list)
    finally:
        pulse.pa_context_disconnect(context)
        pulse.pa_context_unref(context)
        pulse.pa_mainloop_free(mainloop)
    return [(name, text) for name, text, _ in sources], [(name, text) for name, text, _ in sinks]


def indexed_devices(pulse: ctypes.CDLL, mainloop: int, context: int) -> list[tuple[bool, str, int]]:
    """Return (is_source, name, index) of every device, on a connected context."""
    sources = _query(pulse, mainloop, context, pulse.pa_context_get_source_info_list)
    sinks = _query(pulse, mainloop, context, pulse.pa_context_get_sink_info_list)
    return [(True, name, index) for name, _, index in sources] + [
        (False, name, index) for name, _, index in sinks
    ]


def connect_context(pulse: ctypes.CDLL, mainloop: int, context: int) -> None:
    """Connect the context to the default server, without spawning one."""
    if pulse.pa_context_connect(context, None, _CONTEXT_NOAUTOSPAWN, None) < 0:
        _raise(pulse, context)

    def ready() -> bool:
        state = pulse.pa_context_get_state(context)
        if state in {_CONTEXT_FAILED, _CONTEXT_TERMINATED}:
            _raise(pulse, context)
        return bool(state == _CONTEXT_READY)

    _run_until(pulse, mainloop, ready)


def _query(
    pulse: ctypes.CDLL, mainloop: int, context: int, request: ctypes._NamedFuncPointer
) -> list[tuple[str, str, int]]:
    """Run one info-list request to its end and collect (name, description, index)."""
    found: list[tuple[str, str, int]] = []

    def collect(_context: int, info: ctypes._Pointer[_InfoHead], eol: int, _user: int) -> None:
        if not eol and info:
            head = info.contents
            name, text = (head.name or b"").decode(), (head.description or b"").decode()
            found.append((name, text, int(head.index)))

    callback = _INFO_CALLBACK(collect)  # kept referenced until the operation is done
    operation = request(context, callback, None)
    if not operation:
        _raise(pulse, context)
    try:
        _run_until(
            pulse, mainloop, lambda: pulse.pa_operation_get_state(operation) != _OPERATION_RUNNING
        )
    finally:
        pulse.pa_operation_unref(operation)
    return found


def _run_until(pulse: ctypes.CDLL, mainloop: int, done: Callable[[], bool]) -> None:
    """Iterate the main loop in short polls until done() is true, or time out."""
    deadline = time.monotonic() + _TIMEOUT_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise PulseError("PulseAudio did not answer in time")
        if pulse.pa_mainloop_prepare(mainloop, _POLL_STEP_US) < 0:
            raise PulseError("PulseAudio main loop failed")
        pulse.pa_mainloop_poll(mainloop)
        pulse.pa_mainloop_dispatch(mainloop)


def _raise(pulse: ctypes.CDLL, context: int) -> None:
    """Raise PulseError with the context's last error."""
    reason = pulse.pa_strerror(pulse.pa_context_errno(context)) or b"unknown error"
    raise PulseError(f"PulseAudio: {reason.decode(errors='replace')}")
