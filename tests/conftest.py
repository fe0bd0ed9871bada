"""Fixtures shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import shlex
import subprocess
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from custom_components.realtime_voice.audio import AudioBackend, BackendName, create_backend
from tests.helpers.error_log import ErrorLog
from tests.helpers.virtual_audio import MIC, SPEAKER, busy_devices, require_virtual_audio

from .simulator import Simulator


@pytest.fixture(autouse=True)
def error_log(request: pytest.FixtureRequest) -> Iterator[ErrorLog]:
    """Fail the test on an ERROR record of ours, the simulator's, aiortc's, aioice's, asyncio's.

    A task exception nobody retrieved included. A test that causes one on purpose says so with
    error_log.expect(text).
    """
    with ErrorLog.watching(request.node) as log:
        yield log
        if unexpected := log.unexpected():
            pytest.fail(f"ERROR records: {unexpected}")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(error_log: ErrorLog, enable_custom_integrations: None) -> None:
    """Load integrations from custom_components in every test.

    The error log comes first: set up before Home Assistant, it checks after Home Assistant has
    stopped, so what the stop logs counts too.
    """


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up the core `homeassistant` component, which conversation (Assist) needs."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture(params=list(BackendName))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[AudioBackend]:
    """Load one real audio backend: each test that takes it runs once per backend."""
    loop = asyncio.get_running_loop()
    backend = await loop.run_in_executor(None, create_backend, request.param)
    try:
        yield backend
    finally:
        await loop.run_in_executor(None, backend.close)


@pytest.fixture
def virtual_audio() -> Iterator[None]:
    """Require the PulseAudio virtual devices that scripts/test starts, kept awake.

    An idle null sink sleeps up to 2 s at a time: streams opened on it stall, and on a loaded
    machine a running PortAudio stream can stall past the device-loss watchdog. A sound card
    does neither, so every test runs with the sinks busy (see busy_devices).
    """
    require_virtual_audio()
    with busy_devices():
        yield


@pytest.fixture
def virtual_audio_as_is() -> None:
    """Require the virtual devices, not kept awake: for scripts/bench.

    The keepalive streams set the sinks' timing (a 20 ms period) and add that to the measured
    latency; the bench measures the timing that the integration's own streams set.
    """
    require_virtual_audio()


@pytest.fixture
async def without_asyncio_debug(enable_event_loop_debug: None) -> AsyncIterator[None]:
    """Switch off asyncio's debug mode, which the Home Assistant harness switches on.

    Debug mode records the stack of every task and callback, with a stat() of each frame's
    source file; aiortc makes a task for every data channel message. A test that moves
    thousands of messages or calls spent most of its time there (profiled: the flood, 3/4).
    """
    loop = asyncio.get_running_loop()
    loop.set_debug(False)
    try:
        yield
    finally:
        loop.set_debug(True)


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """Let aioice gather a loopback host candidate (the harness's mock_network hides adapters)."""
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[Simulator]:
    """Run the Realtime simulator; fail the test if a client event was invalid.

    A test that sends invalid events on purpose sets `simulator.allow_invalid_client_events`.
    """
    sim = Simulator()
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
    if not sim.allow_invalid_client_events and (invalid := sim.invalid_client_events):
        pytest.fail(f"the client sent invalid events: {[reason for _, reason in invalid]}")


@pytest.fixture
def unplug() -> Iterator[Callable[[str], Callable[[], None]]]:
    """Unload a virtual device's PulseAudio module; load it again after the test.

    unplug(device) returns a function that plugs the device back in at once.
    """
    unloaded: list[tuple[str, str]] = []

    def plug(module: str, arguments: str) -> None:
        if (module, arguments) in unloaded:
            unloaded.remove((module, arguments))
            subprocess.run(["pactl", "load-module", module, *shlex.split(arguments)], check=True)
            subprocess.run(["pactl", "set-default-sink", SPEAKER], check=True)
            subprocess.run(["pactl", "set-default-source", MIC], check=True)

    def unplug(device: str) -> Callable[[], None]:
        modules = subprocess.run(
            ["pactl", "list", "short", "modules"], check=True, capture_output=True, text=True
        ).stdout
        for line in modules.splitlines():
            index, module, arguments = [*line.split("\t"), ""][:3]
            if f"_name={device} " in f"{arguments} ":
                subprocess.run(["pactl", "unload-module", index], check=True)
                unloaded.append((module, arguments))
                return lambda: plug(module, arguments)
        pytest.fail(f"no module provides {device}")

    yield unplug
    for module, arguments in unloaded:
        plug(module, arguments)


@pytest.fixture
def suspend_source() -> Iterator[Callable[[str], None]]:
    """Suspend a virtual source: it stays, but delivers no more audio; resumed after the test."""
    suspended: list[str] = []

    def suspend(source: str) -> None:
        subprocess.run(["pactl", "suspend-source", source, "1"], check=True)
        suspended.append(source)

    yield suspend
    for source in suspended:
        subprocess.run(["pactl", "suspend-source", source, "0"], check=True)
