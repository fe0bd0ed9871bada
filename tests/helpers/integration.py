"""Helpers for tests of the integration in a real Home Assistant, against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
import json
from pathlib import Path
import threading
from typing import Any

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentry,
    ConfigSubentryData,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.config_flow import RealtimeVoiceConfigFlow
from custom_components.realtime_voice.const import (
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_INPUT_DEVICE,
    CONF_OUTPUT_DEVICE,
    DOMAIN,
    SUBENTRY_BOX,
)
from custom_components.realtime_voice.session import VoiceSession
from tests.helpers.virtual_audio import MIC, MIC_FEED, SPEAKER, open_streams
from tests.simulator import SimulatedCall, Simulator

STATE = "sensor.realtime_voice_state"
USER_TRANSCRIPT = "sensor.realtime_voice_last_user_transcript"
ASSISTANT_TRANSCRIPT = "sensor.realtime_voice_last_assistant_transcript"
USER_SPEAKING = "binary_sensor.realtime_voice_user_speaking"
ASSISTANT_SPEAKING = "binary_sensor.realtime_voice_assistant_speaking"
SESSION_ACTIVE = "binary_sensor.realtime_voice_conversation_active"
TOKENS = "sensor.realtime_voice_conversation_tokens"
COST = "sensor.realtime_voice_estimated_cost"
START_BUTTON = "button.realtime_voice_start_conversation"
END_BUTTON = "button.realtime_voice_end_conversation"

KITCHEN = "light.kitchen_light"
GARAGE = "light.garage_light"
FRONT_DOOR = "lock.front_door"


class StateHistory:
    """Every state an entity takes, in order, with bounded waits."""

    def __init__(self, hass: HomeAssistant, entity_id: str) -> None:
        self.hass = hass
        self.entity_id = entity_id
        self.states: list[str] = []
        self._changed = asyncio.Event()
        if (current := hass.states.get(entity_id)) is not None:
            self.states.append(current.state)
        self.unsubscribe = async_track_state_change_event(hass, entity_id, self._on_change)

    @callback
    def _on_change(self, event: Event[Any]) -> None:
        new: State | None = event.data["new_state"]
        if new is not None:
            self.states.append(new.state)
            self._changed.set()

    async def wait_for(self, value: str, timeout: float = 10.0) -> None:
        """Wait until the entity has taken the value (now or before)."""
        await self.until(lambda: value in self.states, timeout)

    async def until(self, probe: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until probe() is true, re-checking at every change."""
        async with asyncio.timeout(timeout):
            while not probe():
                self._changed.clear()
                await self._changed.wait()


class EventLog:
    """Every bus event of one type, with bounded waits."""

    def __init__(self, hass: HomeAssistant, event_type: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self.unsubscribe = hass.bus.async_listen(event_type, self._on_event)

    @callback
    def _on_event(self, event: Event[Any]) -> None:
        self.events.append(dict(event.data))
        self._changed.set()

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool] = lambda _data: True, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Return the first event that matches, waiting for it if needed."""
        async with asyncio.timeout(timeout):
            while True:
                if found := next((data for data in self.events if match(data)), None):
                    return found
                self._changed.clear()
                await self._changed.wait()


async def speak_into_mic(wav: Path) -> None:
    """Play a WAV into the virtual microphone without blocking the loop."""
    process = await asyncio.create_subprocess_exec("paplay", f"--device={MIC_FEED}", str(wav))
    assert await process.wait() == 0


async def build_home(hass: HomeAssistant) -> None:
    """Build a small home of real template entities backed by input_booleans.

    The kitchen light and the front door are exposed to Assist; the garage light is not.
    """
    assert await async_setup_component(
        hass,
        "input_boolean",
        {"input_boolean": {"kitchen": {}, "garage": {}, "door_locked": {"initial": True}}},
    )

    def action(service: str, flag: str) -> dict[str, Any]:
        return {"action": service, "target": {"entity_id": f"input_boolean.{flag}"}}

    def light(name: str, flag: str) -> dict[str, Any]:
        return {
            "name": name,
            "state": f"{{{{ is_state('input_boolean.{flag}', 'on') }}}}",
            "turn_on": action("input_boolean.turn_on", flag),
            "turn_off": action("input_boolean.turn_off", flag),
        }

    door = {
        "name": "Front door",
        "state": "{{ is_state('input_boolean.door_locked', 'on') }}",
        "lock": action("input_boolean.turn_on", "door_locked"),
        "unlock": action("input_boolean.turn_off", "door_locked"),
    }
    lights = [light("Kitchen light", "kitchen"), light("Garage light", "garage")]
    assert await async_setup_component(
        hass, "template", {"template": [{"light": lights, "lock": [door]}]}
    )
    await hass.async_block_till_done()
    async_expose_entity(hass, "conversation", KITCHEN, should_expose=True)
    async_expose_entity(hass, "conversation", FRONT_DOOR, should_expose=True)
    async_expose_entity(hass, "conversation", GARAGE, should_expose=False)


def function_outputs(call: SimulatedCall) -> list[dict[str, Any]]:
    """Return the function_call_outputs the box sent on a call, decoded, in order."""
    return [
        json.loads(event["item"]["output"])
        for _, event in call.client_events
        if event["type"] == "conversation.item.create"
        and event["item"]["type"] == "function_call_output"
    ]


def open_udp_sockets() -> list[int]:
    """Return the inodes of the UDP sockets this process holds (WebRTC's ICE transports)."""
    udp: set[str] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        udp.update(line.split()[9] for line in lines)
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except FileNotFoundError:
            continue  # closed meanwhile (the listing's own descriptor)
        if target.startswith("socket:[") and target[8:-1] in udp:
            held.append(int(target[8:-1]))
    return held


def realtime_tasks() -> list[str]:
    """Return the names of the integration's and the Realtime client's tasks still running."""
    current = asyncio.current_task()
    return [
        task.get_name()
        for task in asyncio.all_tasks()
        if task is not current and task.get_name().startswith(("realtime_voice", "realtime "))
    ]


def device_threads() -> list[str]:
    """Return the audio device threads still alive."""
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(DOMAIN)]


async def assert_recovered(
    hass: HomeAssistant,
    simulator: Simulator,
    *,
    issues: Iterable[str] = (),
    timeout: float = 10.0,
) -> None:
    """Assert that the box is idle again with nothing left open.

    Idle entities, no PulseAudio stream, no device thread, no task of the integration or the
    client, no ICE socket, and exactly the repair issues expected. Waits (bounded) for the
    asynchronous parts of a teardown to settle first. The simulator's peers are closed first
    (OpenAI's side is not ours to check), so every UDP socket left would be the client's.
    """
    await asyncio.gather(*(call.close() for call in simulator.calls))
    async with asyncio.timeout(timeout):
        while (  # noqa: ASYNC110 - a teardown's parts leave no single event to wait on
            hass.states.get(STATE).state != "idle"
            or realtime_tasks()
            or device_threads()
            or open_udp_sockets()
        ):
            await asyncio.sleep(0.05)
    await hass.async_block_till_done()
    assert hass.states.get(STATE).state == "idle"
    assert hass.states.get(SESSION_ACTIVE).state == "off"
    assert hass.states.get(ASSISTANT_SPEAKING).state == "off"
    assert open_streams() == []
    raised = {issue_id for domain, issue_id in ir.async_get(hass).issues if domain == DOMAIN}
    assert raised == set(issues)


def box_entry(
    simulator: Simulator,
    *,
    backend: str = "pulse",
    microphone: str = MIC,
    speaker: str = SPEAKER,
    options: dict[str, Any] | None = None,
    title: str = "Realtime Voice",
    api_key: str | None = None,
) -> MockConfigEntry:
    """Return an account pointed at the simulator with one box on the virtual devices."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="OpenAI (simulator)",
        version=RealtimeVoiceConfigFlow.VERSION,
        minor_version=RealtimeVoiceConfigFlow.MINOR_VERSION,
        data={CONF_API_KEY: api_key or simulator.api_key, CONF_BASE_URL: simulator.base_url},
        subentries_data=[box_data(backend, microphone, speaker, options, title)],
    )


def box_data(
    backend: str = "pulse",
    microphone: str = MIC,
    speaker: str = SPEAKER,
    options: dict[str, Any] | None = None,
    title: str = "Realtime Voice",
) -> ConfigSubentryData:
    """Return a box (a config subentry) on the given devices, with the given options."""
    return ConfigSubentryData(
        subentry_type=SUBENTRY_BOX,
        title=title,
        unique_id=f"{microphone}|{speaker}",
        data={
            CONF_AUDIO_BACKEND: backend,
            CONF_INPUT_DEVICE: microphone,
            CONF_OUTPUT_DEVICE: speaker,
            **(options or {}),
        },
    )


def box_of(entry: ConfigEntry) -> ConfigSubentry:
    """Return the account's only box."""
    (box,) = entry.subentries.values()
    return box


def box_session(entry: ConfigEntry) -> VoiceSession:
    """Return the session of the account's only box."""
    sessions: dict[str, VoiceSession] = entry.runtime_data.boxes
    return sessions[box_of(entry).subentry_id]


def change_box(hass: HomeAssistant, entry: ConfigEntry, **changes: Any) -> None:
    """Change options (or anything else) of the account's only box, as reconfiguring does."""
    box = box_of(entry)
    hass.config_entries.async_update_subentry(entry, box, data={**box.data, **changes})


@asynccontextmanager
async def running_box(
    hass: HomeAssistant, entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """Set the box up; unload it at the end if it is still loaded."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    try:
        yield entry
    finally:
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
