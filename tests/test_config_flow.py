"""The config flow, options, reauth and reconfigure, with the key checked by the simulator."""

from __future__ import annotations

import json
from pathlib import Path
import socket

from homeassistant import config_entries
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData, section
from homeassistant.helpers import translation
from homeassistant.helpers.selector import SelectOptionDict, SelectSelector
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice import options as box_options
from custom_components.realtime_voice.audio import libpulse
from custom_components.realtime_voice.budget import BudgetLimits
from custom_components.realtime_voice.const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_BUDGET_DAILY,
    CONF_BUDGET_MONTHLY,
    CONF_CONFIRM_RISKY_ACTIONS,
    CONF_CONTEXT_LIMIT,
    CONF_IDLE_TIMEOUT,
    CONF_INPUT_DEVICE,
    CONF_INSTRUCTIONS,
    CONF_MAX_DURATION,
    CONF_MODEL,
    CONF_OUTPUT_DEVICE,
    CONF_PRICES,
    CONF_REASONING_EFFORT,
    CONF_RETENTION_RATIO,
    CONF_TRANSCRIPTION_MODEL,
    CONF_VOICE,
    DOMAIN,
    EVENT_TRANSCRIPT,
)
from custom_components.realtime_voice.pricing import Rates
from custom_components.realtime_voice.realtime.events import Truncation

from .error_log import ErrorLog
from .integration import USER_TRANSCRIPT, EventLog, box_entry, running_box, speak_into_mic
from .simulator import Simulator
from .simulator.script import DEFAULT_REPLY
from .virtual_audio import MIC, SPEAKER, speech_wav

pytestmark = pytest.mark.usefixtures("virtual_audio")


STRINGS = json.loads(
    (Path(__file__).parents[1] / "custom_components" / DOMAIN / "strings.json").read_text()
)


def _unexplained(result: ConfigFlowResult, flow: str = "config") -> list[str]:
    """Return the fields of a shown form that lack a label or a description in strings.json."""
    step = STRINGS[flow]["step"][result["step_id"]]
    missing = []
    for marker, validator in result["data_schema"].schema.items():
        texts, name = step, str(marker)
        if isinstance(validator, section):
            texts = step["sections"][name]
            missing += [
                f"{name}.{inner}"
                for inner in validator.schema.schema
                if str(inner) not in texts.get("data_description", {})
            ]
            continue
        if name not in texts.get("data", {}) or name not in texts.get("data_description", {}):
            missing.append(name)
    return missing


def _sections(chosen: dict[str, object]) -> dict[str, dict[str, object]]:
    """Return chosen options as the sectioned form sends them (every section, maybe empty)."""
    form: dict[str, dict[str, object]] = {part.value: {} for part in box_options.Section}
    for key, chosen_value in chosen.items():
        form[box_options.BY_KEY[key].section.value][key] = chosen_value
    return form


def _select_options(result: ConfigFlowResult, field: str) -> list[SelectOptionDict]:
    """Return the options a select field of a form offers."""
    validator = next(v for k, v in result["data_schema"].schema.items() if k == field)
    assert isinstance(validator, SelectSelector)
    return list(validator.config["options"])


async def _persona_step(hass: HomeAssistant, result: ConfigFlowResult, backend: str) -> dict:
    return await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_INSTRUCTIONS: "x", CONF_VOICE: "marin", CONF_MODEL: "gpt-realtime",
         CONF_AUDIO_BACKEND: backend},
    )  # fmt: skip


async def _user_step(hass: HomeAssistant, base_url: str, api_key: str) -> dict:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: api_key, "advanced": {CONF_BASE_URL: base_url}}
    )


async def _add_box_on_the_virtual_devices(hass: HomeAssistant, simulator: Simulator) -> dict:
    """Run the whole flow with the simulator's key, for the virtual microphone and speaker."""
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    result = await _persona_step(hass, result, "pulse")
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: MIC, CONF_OUTPUT_DEVICE: SPEAKER}
    )


async def test_the_whole_flow_creates_a_box(hass: HomeAssistant, simulator: Simulator) -> None:
    """Key (checked), persona and audio library, then devices listed by PulseAudio."""
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    assert result["step_id"] == "persona"
    assert _unexplained(result) == []
    model = next(key for key in result["data_schema"].schema if key == CONF_MODEL)
    offered = result["data_schema"].schema[model].config["options"]
    assert model.default() == "gpt-realtime-2.1-mini"
    assert model.description == {"suggested_value": "gpt-realtime-2.1-mini"}
    assert offered[:2] == [
        "gpt-realtime-2.1-mini",
        "gpt-realtime-2.1",
    ]  # the account's, current first
    assert set(offered[-4:]) == {
        "gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
    }  # fmt: skip
    assert "whisper-1" not in offered

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_INSTRUCTIONS: "You are the kitchen assistant.",
            CONF_VOICE: "cedar",
            CONF_MODEL: "gpt-realtime-2.1",
            CONF_AUDIO_BACKEND: "pulse",
        },
    )
    assert result["step_id"] == "audio"
    assert _unexplained(result) == []
    # PulseAudio's descriptions, as its own tools show them; "default" first, translated.
    microphones = _select_options(result, CONF_INPUT_DEVICE)
    speakers = _select_options(result, CONF_OUTPUT_DEVICE)
    assert microphones[0]["value"] == speakers[0]["value"] == "default"
    assert STRINGS["selector"]["audio_device"]["options"]["default"] == "Default"
    assert {"value": MIC, "label": "Microphone"} in microphones
    assert {"value": SPEAKER, "label": "Speaker"} in speakers
    assert {"value": f"{SPEAKER}.monitor", "label": "Monitor of Speaker"} in microphones

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: MIC, CONF_OUTPUT_DEVICE: SPEAKER}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Realtime Voice (Microphone / Speaker)"
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
    assert options[CONF_MODEL] == "gpt-realtime-2.1"
    assert options[CONF_ALLOW_RISKY_ACTIONS] is False
    assert options[CONF_CONFIRM_RISKY_ACTIONS] is True
    assert options[CONF_LLM_HASS_API] == ["assist"]
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is config_entries.ConfigEntryState.LOADED


def _nowhere() -> str:
    """Return a loopback URL nothing listens at."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    ("mistake", "error"),
    [
        ("a wrong key", "invalid_auth"),
        ("nothing listening", "cannot_connect"),
        ("not the API", "unknown"),
    ],
)
async def test_a_key_that_cannot_be_checked_is_a_form_error_and_can_be_fixed(
    hass: HomeAssistant, simulator: Simulator, error_log: ErrorLog, mistake: str, error: str
) -> None:
    """The user step shows the error on the form; the right answers then go on.

    An answer that is not the API's is logged with its traceback: it points at a wrong URL.
    """
    if error == "unknown":
        error_log.expect("Unexpected answer while checking the API key")
    base_url, api_key = {
        "a wrong key": (simulator.base_url, "sk-wrong"),  # the simulator answers 401
        "nothing listening": (_nowhere(), simulator.api_key),
        "not the API": (simulator.base_url + "/not-the-api", simulator.api_key),  # a 404
    }[mistake]
    result = await _user_step(hass, base_url, api_key)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": error}
    assert _unexplained(result) == []

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_API_KEY: simulator.api_key, "advanced": {CONF_BASE_URL: simulator.base_url}},
    )
    assert result["step_id"] == "persona"
    result = await _persona_step(hass, result, "pulse")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Realtime Voice"  # both devices are the defaults
    assert result["data"][CONF_BASE_URL] == simulator.base_url


async def test_the_same_devices_twice_are_refused(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """One entry per box: a second one for the same microphone and speaker aborts."""
    MockConfigEntry(domain=DOMAIN, unique_id=f"{MIC}|{SPEAKER}", data={}).add_to_hass(hass)
    result = await _add_box_on_the_virtual_devices(hass, simulator)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_a_box_being_added_twice_at_once_is_refused_in_words(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A second flow for devices another flow holds aborts with Home Assistant's own words.

    Home Assistant raises already_in_progress with its own translation domain (2026.10 on), so
    the integration needs no string of its own. Our flows set the box's id and finish in the
    same step; the first flow here holds it from its start, as a discovery would.
    """
    await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER, "unique_id": f"{MIC}|{SPEAKER}"}
    )
    result = await _add_box_on_the_virtual_devices(hass, simulator)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_in_progress"
    assert result["translation_domain"] == "homeassistant"
    texts = await translation.async_get_translations(hass, "en", "config", ["homeassistant"])
    assert texts["component.homeassistant.config.abort.already_in_progress"]


def _entry(simulator: Simulator, api_key: str | None = None) -> MockConfigEntry:
    return box_entry(simulator, api_key=api_key)


async def _options(hass: HomeAssistant, simulator: Simulator) -> tuple[MockConfigEntry, dict]:
    """Set a box up and open its options."""
    entry = _entry(simulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    return entry, await hass.config_entries.options.async_init(entry.entry_id)


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
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"])
    assert _unexplained(result) == []

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
    assert _unexplained(result) == []
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_URL: _nowhere(), CONF_AUDIO_BACKEND: "sounddevice"}
    )
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"base": "cannot_connect"}
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
    entry, result = await _options(hass, simulator)
    assert result["step_id"] == "init"
    assert _unexplained(result, "options") == []
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        _sections(
            {
                CONF_INSTRUCTIONS: "Speak like a pirate.",
                CONF_VOICE: "ash",
                CONF_MODEL: "gpt-realtime-2.1",
                CONF_REASONING_EFFORT: "minimal",
                CONF_IDLE_TIMEOUT: 12,
                CONF_MAX_DURATION: 55,
                "duplex": "full",
                "turn_detection": "semantic_vad",
                "vad_eagerness": "low",
                CONF_ALLOW_RISKY_ACTIONS: True,
                CONF_CONFIRM_RISKY_ACTIONS: False,
                "tool_timeout": 5,
                "max_tool_calls": 3,
                CONF_CONTEXT_LIMIT: 8000,
                CONF_RETENTION_RATIO: 0.6,
                CONF_BUDGET_DAILY: 1.5,
                CONF_BUDGET_MONTHLY: 20,
                CONF_PRICES: {"audio": {"output": 50}},
            }
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    settings = entry.runtime_data.session.settings
    assert settings.instructions == "Speak like a pirate."
    assert settings.idle_timeout == 12
    assert settings.turn_detection.type == "semantic_vad"
    assert settings.turn_detection.eagerness == "low"
    assert settings.tool_policy.allow_risky is True
    assert settings.tool_policy.confirm_risky is False
    assert settings.tool_policy.max_calls_per_turn == 3
    assert settings.reasoning_effort == "minimal"
    assert settings.truncation == Truncation(retention_ratio=0.6, post_instructions_tokens=8000)
    assert settings.budget == BudgetLimits(daily=1.5, monthly=20)
    assert settings.prices.audio == Rates(input=32, cached_input=0.4, output=50)
    assert settings.prices.text.output == 24  # gpt-realtime-2.1's own
    assert entry.state is config_entries.ConfigEntryState.LOADED


@pytest.mark.usefixtures("loopback_ice")
async def test_an_emptied_transcription_model_switches_transcription_off(
    hass: HomeAssistant, simulator: Simulator, tmp_path: Path
) -> None:
    """The form shows the model; emptied (the frontend then leaves the field out), it is off.

    The assistant still hears and answers; only the user's words are no longer written down.
    """
    entry = _entry(simulator)
    async with running_box(hass, entry):
        result = await hass.config_entries.options.async_init(entry.entry_id)
        listening = result["data_schema"].schema["listening"].schema.schema
        field = next(k for k in listening if k == CONF_TRANSCRIPTION_MODEL)
        assert field.description == {"suggested_value": "gpt-4o-mini-transcribe"}
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], _sections({CONF_VOICE: "marin", CONF_MODEL: "gpt-realtime"})
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()

        transcripts = EventLog(hass, EVENT_TRANSCRIPT)
        await hass.services.async_call(DOMAIN, "start_conversation", blocking=True)
        call = await simulator.wait_for_call()
        await speak_into_mic(speech_wav(tmp_path / "ask.wav", "what time is it"))
        said = await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=20)
        await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)
        assert hass.states.get(USER_TRANSCRIPT).state == "unknown"

    assert said["text"] == DEFAULT_REPLY.text
    assert [data for data in transcripts.events if data["role"] == "user"] == []
    assert call.session["audio"]["input"]["transcription"] is None


async def test_invalid_price_overrides_are_a_form_error(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The overrides are checked: the form says what is wrong and nothing is stored."""
    entry, result = await _options(hass, simulator)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _sections({CONF_PRICES: {"audio": {"ouput": 50}}})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_prices"}
    assert result["description_placeholders"] == {"problem": "unknown price audio.ouput"}
    assert CONF_PRICES not in entry.options


async def test_old_price_options_become_overrides(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """1.1 entries had five prices for every model: changed ones stay, the old defaults go."""
    old_defaults = {"price_audio_input": 32, "price_audio_output": 64, "price_text_input": 4,
                    "price_text_output": 16, "price_cached_input": 0.4}  # fmt: skip
    untouched = box_entry(simulator, options={CONF_MODEL: "gpt-realtime-2.1", **old_defaults})
    changed = box_entry(
        simulator,
        microphone="other",
        options={**old_defaults, "price_audio_output": 20, "price_cached_input": 0.3},
    )
    for entry in (untouched, changed):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        assert entry.minor_version == 2
        assert not any(key.startswith("price_") for key in entry.options)
    assert untouched.options == {CONF_MODEL: "gpt-realtime-2.1"}
    assert changed.options[CONF_PRICES] == {
        "audio": {"input": 32, "cached_input": 0.3, "output": 20},
        "text": {"input": 4, "cached_input": 0.3, "output": 16},
    }
    assert changed.runtime_data.session.settings.prices.audio.output == 20


async def test_max_duration_cannot_pass_55_minutes(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """OpenAI ends sessions at 60 minutes: the option refuses more than 55."""
    _, result = await _options(hass, simulator)
    with pytest.raises(InvalidData, match="max_duration"):
        await hass.config_entries.options.async_configure(
            result["flow_id"], _sections({CONF_MAX_DURATION: 90})
        )


async def test_automatic_audio_lists_the_devices_that_work(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """With the automatic audio library, the device lists come from the one that works here."""
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    result = await _persona_step(hass, result, "auto")
    assert MIC in [option["value"] for option in _select_options(result, CONF_INPUT_DEVICE)]


@pytest.mark.parametrize("failure", ["no PulseAudio server", "no libpulse"])
async def test_devices_that_cannot_be_listed_leave_default_and_typing(
    hass: HomeAssistant,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    """The devices step still opens when the library cannot list devices: Default, or a name.

    No server: PULSE_SERVER points at a socket that does not exist. No library: ctypes is asked
    for a soname that does not exist, as on a system without it (the real one stays loaded).
    """
    if failure == "no PulseAudio server":
        monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/pulse/native")
    else:
        monkeypatch.setattr(libpulse, "LIBPULSE_SIMPLE", "libpulse-simple.so.999")
        monkeypatch.setattr(libpulse, "_library", None)
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    result = await _persona_step(hass, result, "pulse")
    assert result["step_id"] == "audio"
    for field in (CONF_INPUT_DEVICE, CONF_OUTPUT_DEVICE):
        assert [option["value"] for option in _select_options(result, field)] == ["default"]
    monkeypatch.undo()  # the devices are there again
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: MIC, CONF_OUTPUT_DEVICE: SPEAKER}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
