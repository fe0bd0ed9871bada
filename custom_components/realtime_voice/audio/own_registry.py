"""Importing a pybind11 extension with a type registry of its own.

pybind11 keeps one registry of the C++ classes it has bound per interpreter (in the
interpreter's state dict), and refuses a second class of the same C++ name. pywebrtc-audio and
pyspeex-noise (which Home Assistant's Assist pipeline loads) both bind a class `AudioProcessor`:
whichever is imported second fails with 'generic_type: type "AudioProcessor" is already
registered!'. With ours first, Home Assistant's voice pipeline would no longer load.

So pywebrtc-audio is imported with the shared registry set aside: it creates its own, the shared
one is put back, and the new one stays in the state dict under another name (each extension holds
a pointer to the registry it started with; kept in the state dict, it is freed last, after the
extension's types, as pybind11 expects). The two extensions never exchange objects, so separate
registries lose nothing.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from types import ModuleType

_PYBIND11_KEYS: Final = "__pybind11_"
_lock = threading.Lock()


def import_with_own_registry(name: str) -> ModuleType:
    """Import a pybind11 extension module so that its bound classes cannot clash with others'."""
    with _lock:
        if (module := sys.modules.get(name)) is not None:
            return module
        shared = _interpreter_state_dict()
        set_aside = _take_pybind11_entries(shared)
        try:
            return importlib.import_module(name)
        finally:
            own = _take_pybind11_entries(shared)
            shared.update({f"{name}{key}": value for key, value in own.items()})
            shared.update(set_aside)


def _take_pybind11_entries(state: dict[str, Any]) -> dict[str, Any]:
    """Remove and return pybind11's entries (registry, module-local types, module cache)."""
    keys = [key for key in state if isinstance(key, str) and key.startswith(_PYBIND11_KEYS)]
    return {key: state.pop(key) for key in keys}


def _interpreter_state_dict() -> dict[str, Any]:
    """Return the interpreter's state dict, where pybind11 (2.13 and later) keeps its registry."""
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_GetDict.restype = ctypes.c_void_p
    api.PyInterpreterState_GetDict.argtypes = (ctypes.c_void_p,)
    # A borrowed reference: read through a cast, which takes a reference of our own (a py_object
    # result type would take over the interpreter's reference and free its dict later).
    borrowed = api.PyInterpreterState_GetDict(api.PyInterpreterState_Get())
    state: dict[str, Any] = ctypes.cast(borrowed, ctypes.py_object).value
    return state
