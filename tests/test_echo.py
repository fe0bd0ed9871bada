"""Echo on a plain speaker: a box whose microphone hears its own speaker (tests.virtual_audio).

The simulator's VAD hears what the integration sends; with the speaker's echo in the microphone
and nothing to stop it, the assistant's own voice reaches it as "user speech" and interrupts the
reply. These tests show that problem, and what each duplex mode does about it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import CONF_DUPLEX, CONF_IDLE_TIMEOUT, DOMAIN

from .integration import ASSISTANT_SPEAKING, StateHistory, box_entry, running_box
from .simulator import Reply, Simulator
from .virtual_audio import ECHO_LEVELS_DB, acoustic_echo

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")

STORY = "Once upon a time, a little robot lived on a shelf in a quiet kitchen."


@pytest.fixture
async def box(
    hass: HomeAssistant, simulator: Simulator, request: pytest.FixtureRequest
) -> AsyncIterator[MockConfigEntry]:
    """A box on the virtual devices, in the duplex mode the test names."""
    entry = box_entry(
        simulator, options={CONF_IDLE_TIMEOUT: 60, CONF_DUPLEX: request.param}
    )
    async with running_box(hass, entry):
        yield entry


async def _reply_with_echo(hass: HomeAssistant, simulator: Simulator, gain_db: float) -> int:
    """Have the assistant say STORY while its echo reaches the microphone; count speech_started."""
    simulator.script(Reply(STORY))
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)
    await hass.services.async_call(DOMAIN, "start_conversation", {}, blocking=True)
    call = simulator.calls[-1]
    with acoustic_echo(gain_db):
        await hass.services.async_call(DOMAIN, "send_text", {"text": "A story!"}, blocking=True)
        await assistant.wait_for("on")
        await assistant.until(lambda: assistant.states[-1] == "off", timeout=20)
    await hass.services.async_call(DOMAIN, "end_conversation", {}, blocking=True)
    return sum(
        1 for _, event in call.server_events if event["type"] == "input_audio_buffer.speech_started"
    )


@pytest.mark.parametrize("box", ["full"], indirect=True)
@pytest.mark.parametrize("gain_db", ECHO_LEVELS_DB)
async def test_without_cancellation_the_echo_interrupts_the_reply(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, gain_db: float
) -> None:
    """Full duplex on a plain speaker: the simulator's VAD takes the echo for the user."""
    assert await _reply_with_echo(hass, simulator, gain_db) >= 1
