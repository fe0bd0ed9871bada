"""What the user and Home Assistant do, at the worst moments.

Double presses, hang-ups at odd times, reloads, stops, options changed mid-conversation, and
audio devices that go away and come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_INSTRUCTIONS,
    CONF_VOICE,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
)
from custom_components.realtime_voice.translated_errors import ISSUE_AUDIO_DEVICE, box_issue_id
from tests.helpers.integration import (
    STATE,
    EventLog,
    StateHistory,
    assert_recovered,
    box_of,
    box_session,
    change_box,
)
from tests.helpers.virtual_audio import MIC, SPEAKER
from tests.simulator import Simulator

from .common import act, start_fails, transitions


async def test_start_twice_at_once(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Two starts at once: one call, one `already_running`, one clean end."""
    results = await asyncio.gather(
        act(hass, "start_conversation"), act(hass, "start_conversation"), return_exceptions=True
    )
    [error] = [result for result in results if isinstance(result, BaseException)]
    assert isinstance(error, HomeAssistantError)
    assert error.translation_key == "already_running"
    assert len(simulator.calls) == 1
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


async def test_end_while_connecting(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """End pressed while the call is being set up: the start completes, then ends as `user`."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    state = StateHistory(hass, STATE)
    start = asyncio.create_task(act(hass, "start_conversation"))
    await state.wait_for("connecting")
    await act(hass, "end_conversation")
    await start
    assert (await ended.wait_for())["reason"] == "user"
    assert transitions(state.states) == ["idle", "connecting", "listening", "ending", "idle"]
    await assert_recovered(hass, simulator)


async def test_end_when_idle(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """End with nothing running: `not_running`, and the box never leaves idle."""
    state = StateHistory(hass, STATE)
    with pytest.raises(HomeAssistantError) as raised:
        await act(hass, "end_conversation")
    assert raised.value.translation_key == "not_running"
    assert transitions(state.states) == ["idle"]
    assert simulator.calls == []
    await assert_recovered(hass, simulator)


@pytest.mark.parametrize("how", ["unload", "reload", "stop"])
async def test_home_assistant_ends_a_conversation(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, how: str
) -> None:
    """Unload, reload or stop during a conversation: ended as `shutdown`, nothing left open."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await act(hass, "start_conversation")
    if how == "unload":
        assert await hass.config_entries.async_unload(box.entry_id)
    elif how == "reload":
        assert await hass.config_entries.async_reload(box.entry_id)
    else:
        hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    assert (await ended.wait_for())["reason"] == "shutdown"
    await simulator.calls[0].wait_closed()
    if how == "unload":
        assert await hass.config_entries.async_setup(box.entry_id)
    await assert_recovered(hass, simulator)
    if how != "stop":
        await act(hass, "start_conversation")
        await act(hass, "end_conversation")
        await assert_recovered(hass, simulator)


async def test_options_changed_during_a_conversation(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """New options leave the running conversation alone and apply to the next one."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await act(hass, "start_conversation")
    first = await simulator.wait_for_call()
    change_box(hass, box, **{CONF_VOICE: "cedar", CONF_INSTRUCTIONS: "Be a pirate."})
    await hass.async_block_till_done()
    assert box_session(box).state.active
    assert not ended.events
    assert first.session["audio"]["output"]["voice"] != "cedar"
    await act(hass, "end_conversation")
    await act(hass, "start_conversation")
    second = await simulator.wait_for_call()
    update = await second.wait_for_client_event("session.update")
    assert update["session"]["audio"]["output"]["voice"] == "cedar"
    assert update["session"]["instructions"].startswith("Be a pirate.")
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


@pytest.mark.parametrize("device", [MIC, SPEAKER])
async def test_a_device_removed_and_back(
    hass: HomeAssistant,
    box: MockConfigEntry,
    simulator: Simulator,
    unplug: Callable[[str], Callable[[], None]],
    device: str,
) -> None:
    """A device goes away mid-conversation: `error`, a repair issue; back again: all works."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    started = EventLog(hass, EVENT_SESSION_STARTED)
    await act(hass, "start_conversation")
    plug_back = unplug(device)
    assert (await ended.wait_for(timeout=15))["reason"] == "error"
    assert hass.states.get(STATE).attributes["last_error"]
    issue_id = box_issue_id(ISSUE_AUDIO_DEVICE, box_of(box).subentry_id)
    await assert_recovered(hass, simulator, issues=[issue_id])
    await start_fails(hass, "audio_unavailable")
    await assert_recovered(hass, simulator, issues=[issue_id])

    plug_back()
    await act(hass, "start_conversation")
    assert len(started.events) == 2
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)
