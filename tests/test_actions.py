"""Actions, errors the user sees, repair issues and diagnostics, on a real Home Assistant."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path

from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.realtime_voice.const import (
    CONF_ALLOWED_ACTIONS,
    CONF_DUPLEX,
    CONF_GREETING,
    CONF_INSTRUCTIONS,
    CONF_USER_TOOLS,
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_TRANSCRIPT,
)
from custom_components.realtime_voice.translated_errors import (
    ISSUE_AUDIO_DEVICE,
    ISSUE_QUOTA,
    box_issue_id,
)
from tests.helpers.integration import (
    COST,
    STATE,
    TOKENS,
    EventLog,
    box_entry,
    box_of,
    box_session,
    running_box,
    speak_into_mic,
)
from tests.helpers.virtual_audio import MIC, SPEAKER, open_streams, speech_wav

from .simulator import Reply, Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")


def _entry(
    simulator: Simulator, *, microphone: str = MIC, title: str = "Realtime Voice"
) -> MockConfigEntry:
    return box_entry(simulator, microphone=microphone, title=title)


@pytest.fixture
async def box(hass: HomeAssistant, simulator: Simulator) -> AsyncIterator[MockConfigEntry]:
    """Set up one box on the virtual devices, pointed at the simulator."""
    async with running_box(hass, _entry(simulator)) as entry:
        yield entry


async def _call(hass: HomeAssistant, action: str, **data: object) -> None:
    await hass.services.async_call(DOMAIN, action, data, blocking=True)


async def test_announce_then_hang_up(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Announce without listen: starts, says the message, ends once it was said."""
    simulator.script(Reply("The laundry is done."))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _call(hass, "announce", message="the laundry is done")
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=0)
    assert said["text"] == "The laundry is done."
    assert (await ended.wait_for(timeout=0))["reason"] == "user"
    request = await simulator.calls[0].wait_for_client_event("response.create")
    assert "the laundry is done" in request["response"]["instructions"]
    assert open_streams() == []


async def test_announce_and_listen(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Announce with listen: the message is said and the conversation stays open."""
    simulator.script(Reply("Dinner is ready. Shall I turn on the lights?"))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _call(hass, "announce", message="dinner is ready", listen=True)
    await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert box_session(box).state.active
    await _call(hass, "end_conversation")


async def test_send_text_needs_a_conversation(hass: HomeAssistant, box: MockConfigEntry) -> None:
    """send_text with nothing running: a translated error."""
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, "send_text", text="hello")
    assert raised.value.translation_key == "not_running"


async def test_actions_find_their_box(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """By device, by entry, or the only one; unknown and ambiguous targets are refused."""
    [device] = dr.async_entries_for_config_entry(dr.async_get(hass), box.entry_id)
    await _call(hass, "start_conversation", device_id=device.id)
    await _call(hass, "end_conversation", config_entry_id=box.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await _call(hass, "start_conversation", device_id="not-a-device")
    assert raised.value.translation_key == "unknown_box"

    other = _entry(simulator, microphone="mic_feed.monitor", title="Second box")
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await _call(hass, "start_conversation")
    assert raised.value.translation_key == "ambiguous_box"
    await hass.config_entries.async_unload(other.entry_id)


async def test_quota_exhausted_raises_a_repair_issue(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """429 insufficient_quota: translated error and a repair issue, cleared by a good start."""
    simulator.faults.http_status = (429, "insufficient_quota")
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, "start_conversation")
    assert raised.value.translation_key == "quota_exceeded"
    issue_id = box_issue_id(ISSUE_QUOTA, box_of(box).subentry_id)  # the box's own
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert hass.states.get(STATE).state == "idle"
    assert hass.states.get(STATE).attributes["last_error"]
    assert open_streams() == []

    simulator.faults.http_status = None
    await _call(hass, "start_conversation")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await _call(hass, "end_conversation")


async def test_a_revoked_key_starts_reauth(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """401 when a conversation starts: translated error and a reauth flow for the entry."""
    simulator.faults.http_status = (401, "invalid_api_key")
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, "start_conversation")
    assert raised.value.translation_key == "auth_failed"
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


@pytest.mark.parametrize("backend", ["pulse", "sounddevice"])
@pytest.mark.parametrize("missing", ["microphone", "speaker"])
async def test_a_missing_device_is_explained(
    hass: HomeAssistant, simulator: Simulator, backend: str, missing: str
) -> None:
    """A device that does not exist: audio_unavailable, a repair issue, nothing left open.

    Without the speaker, the microphone opened first is released again.
    """
    present = (
        {"microphone": MIC, "speaker": SPEAKER}
        if backend == "pulse"
        else {
            "microphone": "default",  # PortAudio's names for the virtual devices
            "speaker": "default",
        }
    )
    entry = box_entry(simulator, backend=backend, **{**present, missing: f"no_such_{missing}"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, "start_conversation")
    assert raised.value.translation_key == "audio_unavailable"
    assert (
        ir.async_get(hass).async_get_issue(
            DOMAIN, box_issue_id(ISSUE_AUDIO_DEVICE, box_of(entry).subentry_id)
        )
        is not None
    )
    assert simulator.calls == []
    assert open_streams() == []
    await hass.config_entries.async_unload(entry.entry_id)


async def test_an_llm_api_that_is_gone_fails_the_start_cleanly(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The chosen LLM API was removed since (its integration deleted).

    Home Assistant's own error names it, passed on as it is; the devices are released.
    """
    entry = box_entry(simulator, options={CONF_LLM_HASS_API: ["removed_api"]})
    async with running_box(hass, entry):
        with pytest.raises(HomeAssistantError, match="API removed_api not found"):
            await _call(hass, "start_conversation")
        assert hass.states.get(STATE).state == "idle"
        assert open_streams() == []
        assert simulator.calls == []


PRIVATE_OPTIONS = {
    CONF_INSTRUCTIONS: "You are Mrs Hudson of 221B Baker Street.",
    CONF_GREETING: "Good evening, Sherlock.",
    CONF_USER_TOOLS: [
        {"name": "feed_the_bees", "description": "Feed the bees in Sussex", "action": "script.hive"}
    ],
    CONF_ALLOWED_ACTIONS: ["script.hive"],
    CONF_DUPLEX: "full",  # the microphone hears the question even while the greeting plays
}


async def test_diagnostics_show_neither_the_key_nor_private_text(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: Simulator,
    tmp_path: Path,
) -> None:
    """Diagnostics keep what explains a problem, and nothing private.

    No key, persona, greeting, user tools or transcripts (what people said at home): a
    diagnostics file ends up attached to public issues.
    """
    assert await async_setup_component(hass, "diagnostics", {})
    simulator.script(Reply("Good evening, Sherlock."), Reply("The violin is in the study."))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    entry = box_entry(simulator, options=PRIVATE_OPTIONS)
    async with running_box(hass, entry):
        await _call(hass, "start_conversation")
        await transcripts.wait_for(lambda data: data["role"] == "assistant")  # the greeting
        await speak_into_mic(speech_wav(tmp_path / "ask.wav", "where is my violin"))
        await transcripts.wait_for(lambda data: data["role"] == "user", timeout=20)
        await transcripts.wait_for(lambda data: data["text"] == "The violin is in the study.")
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        await _call(hass, "end_conversation")

    text = json.dumps(diagnostics)
    said = [data["text"] for data in transcripts.events]
    private = [simulator.api_key, *said, "Hudson", "Sherlock", "bees", "Sussex"]
    assert [words for words in private if words in text] == []
    redacted = "**REDACTED**"
    assert diagnostics["data"][CONF_API_KEY] == redacted
    box = diagnostics["boxes"][box_of(entry).subentry_id]
    for part in ("data", "settings"):
        assert box[part][CONF_INSTRUCTIONS] == redacted
        assert box[part][CONF_GREETING] == redacted
    assert box["data"][CONF_USER_TOOLS] == redacted
    assert box["settings"]["tool_policy"][CONF_USER_TOOLS] == redacted
    assert box["state"]["user_transcript"] == redacted
    assert box["state"]["assistant_transcript"] == redacted
    # What helps to understand a problem stays.
    assert box["title"] == "Realtime Voice"
    assert box["state"]["activity"] in {"listening", "assistant_speaking"}
    assert box["settings"]["voice"] == "marin"
    assert box["settings"]["tool_policy"]["allowed_actions"] == ["script.hive"]
    assert box["audio"]["backend"] == "pulse"
    assert {"frames", "dropped_blocks"} <= set(box["audio"]["microphone"])


async def test_tokens_and_cost_are_counted_and_kept(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Usage from response.done becomes tokens and cost; the totals survive a restart."""
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _call(hass, "start_conversation")
    await _call(hass, "send_text", text="Tell me a joke")
    await transcripts.wait_for(lambda data: data["role"] == "assistant")
    await _call(hass, "end_conversation")
    tokens = hass.states.get(TOKENS)
    cost = hass.states.get(COST)
    assert int(tokens.state) > 0
    assert tokens.attributes["output_audio"] > 0
    total = float(cost.state)
    assert total > 0
    assert cost.attributes["session_cost"] == pytest.approx(total)

    assert await hass.config_entries.async_reload(box.entry_id)
    assert float(hass.states.get(COST).state) == pytest.approx(total)
    assert hass.states.get(TOKENS).attributes["total_tokens"] == int(tokens.state)
    # No conversation since the restart: unknown, not 0 (statistics would read that as a drop).
    assert hass.states.get(TOKENS).state == "unknown"


async def test_the_automatic_audio_library_holds_a_conversation(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The default choice (automatic) opens the devices and talks."""
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    async with running_box(hass, box_entry(simulator, backend="auto")) as entry:
        await _call(hass, "start_conversation")
        assert box_session(entry).audio_diagnostics()["backend"] == "pulse"
        await _call(hass, "send_text", text="hello")
        await transcripts.wait_for(lambda data: data["role"] == "assistant")
        await _call(hass, "end_conversation")
    assert open_streams() == []
