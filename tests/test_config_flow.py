"""The config flow, options, reauth and reconfigure, with the key checked by the simulator."""

from __future__ import annotations

import json
from pathlib import Path
import socket

from homeassistant import config_entries
from homeassistant.config_entries import ConfigFlowResult, ConfigSubentry, SubentryFlowResult
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData, section
from homeassistant.helpers import device_registry as dr, entity_registry as er
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
    SUBENTRY_BOX,
)
from custom_components.realtime_voice.pricing import Rates
from custom_components.realtime_voice.realtime.session_config import Truncation
from tests.helpers.error_log import ErrorLog
from tests.helpers.integration import (
    USER_TRANSCRIPT,
    EventLog,
    box_data,
    box_entry,
    box_of,
    box_session,
    running_box,
    speak_into_mic,
)
from tests.helpers.virtual_audio import MIC, SPEAKER, speech_wav

from .simulator import Simulator
from .simulator.script import DEFAULT_REPLY

pytestmark = pytest.mark.usefixtures("virtual_audio")


STRINGS = json.loads(
    (Path(__file__).parents[1] / "custom_components" / DOMAIN / "strings.json").read_text()
)


def _unexplained(result: ConfigFlowResult | SubentryFlowResult, flow: str = "config") -> list[str]:
    """Return the fields of a shown form that lack a label or a description in strings.json.

    flow is "config" or "box" (the box subentry's flow).
    """
    texts_of_flow = STRINGS["config_subentries"]["box"] if flow == "box" else STRINGS[flow]
    step = texts_of_flow["step"][result["step_id"]]
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
    host = simulator.base_url.removeprefix("http://")
    assert result["title"] == f"OpenAI ({host})"  # the account
    assert result["data"] == {CONF_API_KEY: simulator.api_key, CONF_BASE_URL: simulator.base_url}
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is config_entries.ConfigEntryState.LOADED
    box = box_of(entry)  # the first box, a subentry of the account
    assert box.title == "Realtime Voice (Microphone / Speaker)"
    assert box.unique_id == f"{MIC}|{SPEAKER}"
    assert box.data[CONF_AUDIO_BACKEND] == "pulse"
    assert (box.data[CONF_INPUT_DEVICE], box.data[CONF_OUTPUT_DEVICE]) == (MIC, SPEAKER)
    assert box.data[CONF_INSTRUCTIONS] == "You are the kitchen assistant."
    assert box.data[CONF_VOICE] == "cedar"
    assert box.data[CONF_MODEL] == "gpt-realtime-2.1"
    assert box.data[CONF_ALLOW_RISKY_ACTIONS] is False
    assert box.data[CONF_CONFIRM_RISKY_ACTIONS] is True
    assert box.data[CONF_LLM_HASS_API] == ["assist"]
    [device] = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert (device.config_entry_id, device.config_subentry_id) == (entry.entry_id, box.subentry_id)
    assert hass.states.get("sensor.realtime_voice_microphone_speaker_state").state == "idle"


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
    assert result["subentries"][0]["title"] == "Realtime Voice"  # both devices: the defaults
    assert result["data"][CONF_BASE_URL] == simulator.base_url


async def test_the_same_devices_twice_are_refused(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A box of another account on the same microphone and speaker: the flow aborts, in words."""
    box_entry(simulator, api_key="sk-another-account").add_to_hass(hass)
    result = await _add_box_on_the_virtual_devices(hass, simulator)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "devices_in_use"
    assert STRINGS["config"]["abort"]["devices_in_use"]


async def test_the_same_account_twice_is_refused(hass: HomeAssistant, simulator: Simulator) -> None:
    """The same key and endpoint again: the account exists, a box is added to it instead."""
    box_entry(simulator).add_to_hass(hass)
    result = await _user_step(hass, simulator.base_url, simulator.api_key)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert "add a box" in STRINGS["config"]["abort"]["already_configured"]


def _entry(simulator: Simulator, api_key: str | None = None) -> MockConfigEntry:
    return box_entry(simulator, api_key=api_key)


async def _options(hass: HomeAssistant, simulator: Simulator) -> tuple[MockConfigEntry, dict]:
    """Set a box up and start reconfiguring it (its options, library, then devices)."""
    entry = _entry(simulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    return entry, await entry.start_subentry_reconfigure_flow(hass, box_of(entry).subentry_id)


async def _reconfigure(
    hass: HomeAssistant,
    result: SubentryFlowResult,
    chosen: dict[str, object],
    backend: str = "pulse",
    devices: tuple[str, str] = (MIC, SPEAKER),
) -> SubentryFlowResult:
    """Submit the options and the library, then the devices."""
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**_sections(chosen), CONF_AUDIO_BACKEND: backend}
    )
    if result["type"] is not FlowResultType.FORM or result["step_id"] != "audio":
        return result
    return await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: devices[0], CONF_OUTPUT_DEVICE: devices[1]}
    )


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


async def test_reconfigure_changes_the_endpoint(hass: HomeAssistant, simulator: Simulator) -> None:
    """Reconfiguring the account: another endpoint, checked with the key."""
    entry = _entry(simulator)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    assert _unexplained(result) == []
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_URL: _nowhere()}
    )
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_URL: simulator.base_url + "/"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_BASE_URL] == simulator.base_url + "/"
    await hass.async_block_till_done()  # reloaded with the new endpoint
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfiguring_a_box_changes_its_audio_library_and_devices(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The library and then the devices change (what the repair issues tell users to do).

    The devices step lists the new library's devices with today's preselected; the box's
    title follows its devices, and the next conversation opens the new ones.
    """
    entry, result = await _options(hass, simulator)
    box = box_of(entry)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**_sections({}), CONF_AUDIO_BACKEND: "sounddevice"}
    )
    assert result["step_id"] == "audio"
    assert _unexplained(result, "box") == []
    offered = [option["value"] for option in _select_options(result, CONF_INPUT_DEVICE)]
    assert "default" in offered
    assert MIC not in offered  # PortAudio names the virtual devices otherwise
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: "default", CONF_OUTPUT_DEVICE: "default"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert box.data[CONF_AUDIO_BACKEND] == "sounddevice"
    assert box.unique_id == "default|default"
    settings = box_session(entry).settings
    assert settings.audio_backend == "sounddevice"
    assert (settings.input_device, settings.output_device) == (None, None)

    # Back to PulseAudio, another microphone only.
    result = await entry.start_subentry_reconfigure_flow(hass, box.subentry_id)
    result = await _reconfigure(hass, result, {}, "pulse", (f"{SPEAKER}.monitor", SPEAKER))
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert box.data[CONF_INPUT_DEVICE] == f"{SPEAKER}.monitor"
    assert box_session(entry).settings.input_device == f"{SPEAKER}.monitor"
    assert entry.state is config_entries.ConfigEntryState.LOADED


async def test_a_box_cannot_take_another_boxs_devices(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Reconfiguring a box onto the devices of another box aborts; nothing changes."""
    entry = _entry(simulator)
    other = box_data("pulse", f"{SPEAKER}.monitor", SPEAKER, title="Second box")
    entry.add_to_hass(hass)
    hass.config_entries.async_add_subentry(entry, ConfigSubentry(**other))
    assert await hass.config_entries.async_setup(entry.entry_id)
    second = next(box for box in entry.subentries.values() if box.title == "Second box")
    result = await entry.start_subentry_reconfigure_flow(hass, second.subentry_id)
    result = await _reconfigure(hass, result, {}, "pulse", (MIC, SPEAKER))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "devices_in_use"
    assert second.data[CONF_INPUT_DEVICE] == f"{SPEAKER}.monitor"
    assert STRINGS["config_subentries"]["box"]["abort"]["devices_in_use"]


async def test_a_box_is_added_to_the_account(hass: HomeAssistant, simulator: Simulator) -> None:
    """Add box: persona and library, then devices; the box gets its device and entities."""
    entry = _entry(simulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_BOX), context={"source": config_entries.SOURCE_USER}
    )
    assert result["step_id"] == "user"
    assert _unexplained(result, "box") == []
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_INSTRUCTIONS: "Garage.", CONF_VOICE: "ash", CONF_MODEL: "gpt-realtime",
         CONF_AUDIO_BACKEND: "pulse"},
    )  # fmt: skip
    assert result["step_id"] == "audio"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_INPUT_DEVICE: f"{SPEAKER}.monitor", CONF_OUTPUT_DEVICE: SPEAKER}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Realtime Voice (Monitor of Speaker / Speaker)"
    await hass.async_block_till_done()
    assert entry.state is config_entries.ConfigEntryState.LOADED
    new = next(box for box in entry.subentries.values() if box.title == result["title"])
    assert new.data[CONF_INSTRUCTIONS] == "Garage."
    assert set(entry.runtime_data.boxes) == set(entry.subentries)
    [device] = [
        device
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if device.config_subentry_id == new.subentry_id
    ]
    assert device.name == result["title"]
    entities = er.async_entries_for_device(er.async_get(hass), device.id)
    assert {entity.config_subentry_id for entity in entities} == {new.subentry_id}
    state = hass.states.get("sensor.realtime_voice_monitor_of_speaker_speaker_state")
    assert state is not None
    assert state.state == "idle"


async def test_options_apply_to_the_next_conversation(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Reconfiguring a box shows every option and stores what the user chose."""
    entry, result = await _options(hass, simulator)
    assert result["step_id"] == "reconfigure"
    assert _unexplained(result, "box") == []
    result = await _reconfigure(
        hass,
        result,
        (
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
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    settings = box_session(entry).settings
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
        result = await entry.start_subentry_reconfigure_flow(hass, box_of(entry).subentry_id)
        listening = result["data_schema"].schema["listening"].schema.schema
        field = next(k for k in listening if k == CONF_TRANSCRIPTION_MODEL)
        assert field.description == {"suggested_value": "gpt-4o-mini-transcribe"}
        result = await _reconfigure(hass, result, {CONF_VOICE: "marin", CONF_MODEL: "gpt-realtime"})
        assert result["reason"] == "reconfigure_successful"
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
    result = await _reconfigure(hass, result, {CONF_PRICES: {"audio": {"ouput": 50}}})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_prices"}
    assert result["description_placeholders"] == {"problem": "unknown price audio.ouput"}
    assert CONF_PRICES not in box_of(entry).data


async def test_max_duration_cannot_pass_55_minutes(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """OpenAI ends sessions at 60 minutes: the option refuses more than 55."""
    _, result = await _options(hass, simulator)
    with pytest.raises(InvalidData, match="max_duration"):
        await _reconfigure(hass, result, {CONF_MAX_DURATION: 90})


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
