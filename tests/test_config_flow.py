"""The config flow, options, reauth and reconfigure, with the key checked by the simulator."""

from __future__ import annotations

import socket

from homeassistant import config_entries
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_IDLE_TIMEOUT,
    CONF_INPUT_DEVICE,
    CONF_INSTRUCTIONS,
    CONF_MAX_DURATION,
    CONF_MODEL,
    CONF_OUTPUT_DEVICE,
    CONF_VOICE,
    DOMAIN,
)

from .error_log import ErrorLog
from .integration import box_entry
from .simulator import Simulator
from .virtual_audio import MIC, SPEAKER

pytestmark = pytest.mark.usefixtures("virtual_audio")


def _options_of(result: dict) -> list[str]:
    """Return the values a select field of a form offers."""
    return [option["value"] for option in result["selector"]["select"]["options"]]


async def _user_step(hass: HomeAssistant, base_url: str, api_key: str) -> dict:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: api_key, "advanced": {CONF_BASE_URL: base_url}}
    )


async def test_the_whole_flow_creates_a_box(hass: HomeAssistant, simulator: Simulator) -> None:
    """Key (checked), persona and audio library, then devices listed by PulseAudio."""
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    assert result["step_id"] == "persona"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_INSTRUCTIONS: "You are the kitchen assistant.",
            CONF_VOICE: "cedar",
            CONF_MODEL: "gpt-realtime-mini",
            CONF_AUDIO_BACKEND: "pulse",
        },
    )
    assert result["step_id"] == "audio"
    schema = result["data_schema"].schema
    microphones = next(v for k, v in schema.items() if k == CONF_INPUT_DEVICE)
    speakers = next(v for k, v in schema.items() if k == CONF_OUTPUT_DEVICE)
    assert MIC in [option["value"] for option in microphones.config["options"]]
    assert SPEAKER in [option["value"] for option in speakers.config["options"]]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: MIC, CONF_OUTPUT_DEVICE: SPEAKER}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_API_KEY: simulator.api_key,
        CONF_BASE_URL: simulator.base_url,
        CONF_AUDIO_BACKEND: "pulse",
        CONF_INPUT_DEVICE: MIC,
        CONF_OUTPUT_DEVICE: SPEAKER,
    }
    options = result["options"]
    assert options[CONF_INSTRUCTIONS] == "You are the kitchen assistant."
    assert options[CONF_VOICE] == "cedar"
    assert options[CONF_MODEL] == "gpt-realtime-mini"
    assert options[CONF_ALLOW_RISKY_ACTIONS] is False
    assert options[CONF_LLM_HASS_API] == ["assist"]
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is config_entries.ConfigEntryState.LOADED


async def test_a_refused_key_is_a_form_error(hass: HomeAssistant, simulator: Simulator) -> None:
    """The simulator answers 401 to a key it does not know."""
    result = await _user_step(hass, simulator.base_url, "sk-wrong")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}


async def test_an_unreachable_endpoint_is_a_form_error(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """Nothing listens at the base URL: cannot_connect."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await _user_step(hass, f"http://127.0.0.1:{port}", "sk-any")
    assert result["errors"] == {"base": "cannot_connect"}


async def test_an_unexpected_answer_is_a_form_error(
    hass: HomeAssistant, simulator: Simulator, error_log: ErrorLog
) -> None:
    """A 404 from somewhere that is not the API: unknown, and logged with its traceback."""
    error_log.expect("Unexpected answer while checking the API key")
    result = await _user_step(hass, simulator.base_url + "/not-the-api", simulator.api_key)
    assert result["errors"] == {"base": "unknown"}


async def test_the_same_devices_twice_are_refused(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """One entry per box: a second one for the same microphone and speaker aborts."""
    MockConfigEntry(domain=DOMAIN, unique_id=f"{MIC}|{SPEAKER}", data={}).add_to_hass(hass)
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_INSTRUCTIONS: "x", CONF_VOICE: "marin", CONF_MODEL: "gpt-realtime",
         CONF_AUDIO_BACKEND: "pulse"},
    )  # fmt: skip
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: MIC, CONF_OUTPUT_DEVICE: SPEAKER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


def _entry(simulator: Simulator, api_key: str | None = None) -> MockConfigEntry:
    return box_entry(simulator, api_key=api_key)


async def test_a_refused_key_at_startup_asks_for_a_new_one(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Setup with a refused key starts reauth; a good key fixes the entry."""
    entry = _entry(simulator, api_key="sk-revoked")
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is config_entries.ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_API_KEY: "sk-still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_API_KEY: simulator.api_key}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_API_KEY] == simulator.api_key
    assert entry.state is config_entries.ConfigEntryState.LOADED


async def test_reconfigure_changes_the_audio_library(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Reconfigure: endpoint and library, then the same devices."""
    entry = _entry(simulator)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_URL: simulator.base_url, CONF_AUDIO_BACKEND: "sounddevice"}
    )
    assert result["step_id"] == "audio"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: MIC, CONF_OUTPUT_DEVICE: SPEAKER}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_AUDIO_BACKEND] == "sounddevice"


async def test_options_apply_to_the_next_conversation(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The options flow shows every option and stores what the user chose."""
    entry = _entry(simulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_INSTRUCTIONS: "Speak like a pirate.",
            CONF_VOICE: "ash",
            CONF_MODEL: "gpt-realtime",
            CONF_IDLE_TIMEOUT: 12,
            CONF_MAX_DURATION: 55,
            "duplex": "full",
            "turn_detection": "semantic_vad",
            "vad_eagerness": "low",
            CONF_ALLOW_RISKY_ACTIONS: True,
            "tool_timeout": 5,
            "max_tool_calls": 3,
            "price_audio_input": 32,
            "price_audio_output": 64,
            "price_text_input": 4,
            "price_text_output": 16,
            "price_cached_input": 0.4,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    settings = entry.runtime_data.session.settings
    assert settings.instructions == "Speak like a pirate."
    assert settings.idle_timeout == 12
    assert settings.turn_detection.type == "semantic_vad"
    assert settings.turn_detection.eagerness == "low"
    assert settings.tool_policy.allow_risky is True
    assert settings.tool_policy.max_calls_per_turn == 3
    assert entry.state is config_entries.ConfigEntryState.LOADED


async def test_max_duration_cannot_pass_55_minutes(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """OpenAI ends sessions at 60 minutes: the option refuses more than 55."""
    entry = _entry(simulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    with pytest.raises(InvalidData, match="max_duration"):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_MAX_DURATION: 90}
        )


async def test_automatic_audio_lists_the_devices_that_work(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """With the automatic audio library, the device lists come from the one that works here."""
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_INSTRUCTIONS: "x", CONF_VOICE: "marin", CONF_MODEL: "gpt-realtime",
         CONF_AUDIO_BACKEND: "auto"},
    )  # fmt: skip
    schema = result["data_schema"].schema
    microphones = next(v for k, v in schema.items() if k == CONF_INPUT_DEVICE)
    assert MIC in [option["value"] for option in microphones.config["options"]]
