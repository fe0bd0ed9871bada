"""Models from the account, the repair before a model dies, usage, costs and spending limits.

A real Home Assistant with the box on the virtual devices, the simulator as OpenAI (its model
list has OpenAI's `shutdown_date`s; its usage follows tests/simulator/usage_model.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.realtime_voice.budget import GOODBYE_MAX_OUTPUT_TOKENS, reserve
from custom_components.realtime_voice.const import (
    CONF_BUDGET_CONVERSATION,
    CONF_BUDGET_DAILY,
    CONF_CONTEXT_LIMIT,
    CONF_INSTRUCTIONS,
    CONF_MODEL,
    CONF_REASONING_EFFORT,
    CONF_RETENTION_RATIO,
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_TRANSCRIPT,
    EVENT_USAGE,
)
from custom_components.realtime_voice.model_issues import issue_id
from custom_components.realtime_voice.pricing import model_prices, transcription_prices
from custom_components.realtime_voice.realtime.events import TranscriptionUsage, Usage
from custom_components.realtime_voice.translated_errors import budget_issue_id
from tests.helpers.integration import (
    COST,
    STATE,
    TOKENS,
    EventLog,
    assert_recovered,
    box_entry,
    box_of,
    box_session,
    change_box,
    running_box,
)

from .simulator import SimulatedCall, Simulator
from .test_pricing import GA_RESPONSE_USAGE, TRANSCRIPTION_USAGE

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")


async def _call(hass: HomeAssistant, action: str, **data: object) -> None:
    await hass.services.async_call(DOMAIN, action, data, blocking=True)


def _issue(hass: HomeAssistant, box_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id(box_id))


async def _fix(hass: HomeAssistant, issue: str) -> dict[str, Any]:
    """Run an issue's fix flow as the Repairs dashboard does: open it, submit the form."""
    assert await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(DOMAIN, context={"issue_id": issue})
    assert result["type"] is FlowResultType.FORM
    form = dict(result)
    result = await manager.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    return form


async def _a_day_later(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Let a day pass: the daily model check runs (and its request is answered)."""
    freezer.tick(timedelta(days=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def _talk(hass: HomeAssistant, transcripts: EventLog, text: str = "Hello") -> None:
    """Type a question and wait for the spoken answer's transcript."""
    count = len(transcripts.events)
    await _call(hass, "send_text", text=text)
    await transcripts.wait_for(lambda _data: len(transcripts.events) > count)


async def test_a_retiring_model_raises_a_repair_whose_fix_switches_the_box(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """gpt-realtime has a shutdown date: at setup an issue says so; its fix moves to 2.1."""
    entry = box_entry(simulator, options={CONF_MODEL: "gpt-realtime"})
    async with running_box(hass, entry):
        issue = _issue(hass, box_of(entry).subentry_id)
        assert issue is not None
        assert issue.translation_key == "model_retiring"
        assert issue.is_fixable
        assert issue.translation_placeholders is not None
        assert issue.translation_placeholders["shutdown_date"] == "2027-01-19"
        assert issue.translation_placeholders["replacement"] == "gpt-realtime-2.1"
        transcripts = EventLog(hass, EVENT_TRANSCRIPT)
        await _call(hass, "start_conversation")
        assert (await simulator.wait_for_call()).session["model"] == "gpt-realtime"
        await _talk(hass, transcripts)  # the model still answers: the warning stays
        await _call(hass, "end_conversation")
        assert _issue(hass, box_of(entry).subentry_id) is not None

        form = await _fix(hass, issue.issue_id)
        await hass.async_block_till_done()

        assert form["description_placeholders"]["model"] == "gpt-realtime"
        assert box_of(entry).data[CONF_MODEL] == "gpt-realtime-2.1"
        assert _issue(hass, box_of(entry).subentry_id) is None
        await _call(hass, "start_conversation")
        call = await simulator.wait_for_call()
        assert call.session["model"] == "gpt-realtime-2.1"
        await _call(hass, "end_conversation")
        await assert_recovered(hass, simulator)


async def test_the_daily_check_notices_a_shutdown_date_and_a_vanished_model(
    hass: HomeAssistant, simulator: Simulator, freezer: FrozenDateTimeFactory
) -> None:
    """A shutdown date announced later, or a model gone from the account, raise the issue."""
    entry = box_entry(simulator, options={CONF_MODEL: "gpt-realtime-2.1-mini"})
    async with running_box(hass, entry):
        assert _issue(hass, box_of(entry).subentry_id) is None

        simulator.models["gpt-realtime-2.1-mini"] = "2028-03-01"
        await _a_day_later(hass, freezer)
        issue = _issue(hass, box_of(entry).subentry_id)
        assert issue is not None
        assert issue.translation_key == "model_retiring"
        assert issue.translation_placeholders is not None
        assert issue.translation_placeholders["shutdown_date"] == "2028-03-01"
        assert issue.translation_placeholders["replacement"] == "gpt-realtime-2.1"

        del simulator.models["gpt-realtime-2.1-mini"]
        await _a_day_later(hass, freezer)
        issue = _issue(hass, box_of(entry).subentry_id)
        assert issue is not None
        assert issue.translation_key == "model_unlisted"

        simulator.models["gpt-realtime-2.1-mini"] = None
        await _a_day_later(hass, freezer)
        assert _issue(hass, box_of(entry).subentry_id) is None


async def test_a_model_refused_at_connect_raises_the_issue_at_once(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """OpenAI answers the call with `invalid_model`: a translated error and the model issue."""
    entry = box_entry(simulator, options={CONF_MODEL: "gpt-realtime-2.1-mini"})
    async with running_box(hass, entry):
        simulator.faults.http_status = (400, "invalid_model")
        with pytest.raises(HomeAssistantError) as raised:
            await _call(hass, "start_conversation")
        assert raised.value.translation_key == "model_unavailable"
        issue = _issue(hass, box_of(entry).subentry_id)
        assert issue is not None
        assert issue.translation_key == "model_refused"
        assert issue.severity is ir.IssueSeverity.ERROR
        await assert_recovered(hass, simulator, issues=[issue.issue_id])


async def test_a_model_the_account_cannot_use_ends_the_conversation_with_the_issue(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """An unlisted model: warned at setup, then its first answer fails (`model_not_found`).

    The conversation ends and the issue says OpenAI refused it; its fix makes the box talk again.
    """
    entry = box_entry(simulator, options={CONF_MODEL: "gpt-realtime-9"})
    async with running_box(hass, entry):
        issue = _issue(hass, box_of(entry).subentry_id)
        assert issue is not None
        assert issue.translation_key == "model_unlisted"
        ended = EventLog(hass, EVENT_SESSION_ENDED)
        await _call(hass, "start_conversation")
        await _call(hass, "send_text", text="Hello")
        assert (await ended.wait_for())["reason"] == "error"
        issue = _issue(hass, box_of(entry).subentry_id)
        assert issue is not None
        assert issue.translation_key == "model_refused"
        assert "gpt-realtime-9" in hass.states.get(STATE).attributes["last_error"]
        await assert_recovered(hass, simulator, issues=[issue.issue_id])

        await _fix(hass, issue.issue_id)
        await hass.async_block_till_done()
        assert box_of(entry).data[CONF_MODEL] == "gpt-realtime-2.1"
        transcripts = EventLog(hass, EVENT_TRANSCRIPT)
        await _call(hass, "start_conversation")
        await _talk(hass, transcripts)
        await _call(hass, "end_conversation")
        await assert_recovered(hass, simulator)


async def test_the_token_sensor_is_openais_total_on_openais_own_examples(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """OpenAI's GA usage example counts 253 tokens, at mini's prices.

    Its transcription example adds 13 audio and 9 text tokens at gpt-4o-mini-transcribe's prices.
    """
    async with running_box(hass, box_entry(simulator)):
        usage_events = EventLog(hass, EVENT_USAGE)
        await _call(hass, "start_conversation")
        call = await simulator.wait_for_call()
        await call.send(_response_done(GA_RESPONSE_USAGE))
        await usage_events.wait_for(lambda data: data["source"] == "response")
        tokens = hass.states.get(TOKENS)
        assert int(tokens.state) == GA_RESPONSE_USAGE["total_tokens"]
        assert tokens.attributes["input_cached_text"] == 64
        response_cost = model_prices("gpt-realtime-2.1-mini").cost(
            Usage(input_text=55, input_cached_text=64, input_audio=13, output_text=30,
                  output_audio=91)
        )  # fmt: skip
        assert float(hass.states.get(COST).state) == pytest.approx(response_cost, abs=1e-6)

        await call.send(_transcription_done(TRANSCRIPTION_USAGE))
        await usage_events.wait_for(lambda data: data["source"] == "transcription")
        tokens = hass.states.get(TOKENS)
        assert tokens.attributes["transcription_input_audio"] == 13
        assert tokens.attributes["transcription_output_text"] == 9
        transcription_cost = transcription_prices("gpt-4o-mini-transcribe").cost(
            TranscriptionUsage(input_audio=13, output_text=9)
        )
        cost = hass.states.get(COST)
        assert float(cost.state) == pytest.approx(response_cost + transcription_cost, abs=1e-6)
        assert cost.attributes["cost_today"] == pytest.approx(float(cost.state), abs=1e-6)
        assert cost.attributes["cost_this_month"] == pytest.approx(float(cost.state), abs=1e-6)

        response = usage_events.events[0]
        assert response["tokens"] == 253
        assert response["model"] == "gpt-realtime-2.1-mini"
        assert response["usage"]["input_cached_text"] == 64
        assert response["cost"] == pytest.approx(response_cost)
        await _call(hass, "end_conversation")
        await assert_recovered(hass, simulator)


async def test_tokens_and_cost_of_a_real_conversation(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The sensor adds up the `total_tokens` of every response.done; one usage event each."""
    persona = "You are the voice of a big house. " + "The hall has a red lamp. " * 80
    async with running_box(hass, box_entry(simulator, options={CONF_INSTRUCTIONS: persona})):
        usage_events = EventLog(hass, EVENT_USAGE)
        transcripts = EventLog(hass, EVENT_TRANSCRIPT)
        await _call(hass, "start_conversation")
        call = await simulator.wait_for_call()
        for text in ("Hello", "Tell me a joke", "Another one"):
            await _talk(hass, transcripts, text)
            answered = len(_done(call))
            await usage_events.wait_for(lambda _data, n=answered: len(usage_events.events) >= n)
        await _call(hass, "end_conversation")
        done = _done(call)
        assert len(done) == 3
        billed = [event["response"]["usage"] for event in done]
        assert int(hass.states.get(TOKENS).state) == sum(usage["total_tokens"] for usage in billed)
        assert billed[-1]["input_token_details"]["cached_tokens"] > 0  # the context re-read
        assert [event["tokens"] for event in usage_events.events] == [
            usage["total_tokens"] for usage in billed
        ]
        assert sum(event["cost"] for event in usage_events.events) == pytest.approx(
            float(hass.states.get(COST).state), abs=1e-6
        )
        await assert_recovered(hass, simulator)


async def test_a_start_beyond_the_daily_limit_is_refused(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A daily limit with no room for an answer: a translated error, a repair issue, no call."""
    entry = box_entry(simulator, options={CONF_BUDGET_DAILY: 0.001})
    async with running_box(hass, entry):
        with pytest.raises(HomeAssistantError) as raised:
            await _call(hass, "start_conversation")
        assert raised.value.translation_key == "budget_daily"
        assert raised.value.translation_placeholders == {"limit": "0.00", "spent": "0.00"}
        assert simulator.calls == []
        await assert_recovered(hass, simulator, issues=[budget_issue_id(box_of(entry).subentry_id)])

        change_box(hass, entry, **{CONF_BUDGET_DAILY: 1.0})
        await hass.async_block_till_done()
        await _call(hass, "start_conversation")
        await _call(hass, "end_conversation")
        await assert_recovered(hass, simulator)


async def test_a_conversation_that_reaches_its_limit_ends_with_a_short_goodbye(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Once the next answer and a goodbye might not fit, the box says goodbye and hangs up.

    The conversation's cost stays under the limit, goodbye included.
    """
    limit = reserve(model_prices("gpt-realtime-2.1-mini"), 0.0) + 0.0015  # room for a few answers
    entry = box_entry(simulator, options={CONF_BUDGET_CONVERSATION: limit})
    async with running_box(hass, entry):
        ended = EventLog(hass, EVENT_SESSION_ENDED)
        usage_events = EventLog(hass, EVENT_USAGE)
        transcripts = EventLog(hass, EVENT_TRANSCRIPT)
        await _call(hass, "start_conversation")
        call = await simulator.wait_for_call()
        for talks in range(1, 10):
            try:
                await _talk(hass, transcripts)
            except HomeAssistantError as err:
                # The limit was reached as this question went in: the box says goodbye.
                if err.translation_key != "not_running":
                    raise
                break
            await usage_events.wait_for(lambda _data, n=talks: len(_answers(usage_events)) >= n)
            if ended.events or _limit_goodbye_asked(call):
                break
        assert (await ended.wait_for(timeout=15))["reason"] == "budget"
        assert talks > 1  # the limit let the conversation go on while there was room
        goodbye = [event for event in _client(call, "response.create") if "response" in event]
        assert goodbye[-1]["response"]["max_output_tokens"] == GOODBYE_MAX_OUTPUT_TOKENS
        assert "spending limit" in goodbye[-1]["response"]["instructions"]
        assert _done(call)[-1]["response"]["status"] == "completed"  # the goodbye was said
        billed = box_session(entry).state.session_cost
        assert 0 < billed <= limit
        await assert_recovered(hass, simulator)


async def test_reasoning_and_truncation_reach_the_session(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Options become the GA `reasoning` and `truncation`.

    Reasoning goes only to models that take it (the simulator refuses it for older ones).
    """
    options = {
        CONF_MODEL: "gpt-realtime-2.1",
        CONF_REASONING_EFFORT: "high",
        CONF_CONTEXT_LIMIT: 6000,
        CONF_RETENTION_RATIO: 0.5,
    }
    entry = box_entry(simulator, options=options)
    async with running_box(hass, entry):
        await _call(hass, "start_conversation")
        call = await simulator.wait_for_call()
        assert call.session["reasoning"] == {"effort": "high"}
        assert call.session["truncation"] == {
            "type": "retention_ratio",
            "retention_ratio": 0.5,
            "token_limits": {"post_instructions": 6000},
        }
        await _call(hass, "end_conversation")

        change_box(hass, entry, **{CONF_MODEL: "gpt-realtime-1.5", CONF_CONTEXT_LIMIT: 0})
        await hass.async_block_till_done()
        await _call(hass, "start_conversation")
        call = await simulator.wait_for_call()
        assert "reasoning" not in _client(call, "session.update")[0]["session"]
        assert call.session["truncation"] == "auto"
        await _call(hass, "end_conversation")
        await assert_recovered(hass, simulator)


def _answers(usage_events: EventLog) -> list[dict[str, Any]]:
    return [event for event in usage_events.events if event["source"] == "response"]


def _done(call: SimulatedCall) -> list[dict[str, Any]]:
    return [event for _, event in call.server_events if event["type"] == "response.done"]


def _client(call: SimulatedCall, event_type: str) -> list[dict[str, Any]]:
    return [event for _, event in call.client_events if event["type"] == event_type]


def _response_done(usage: dict[str, Any]) -> dict[str, Any]:
    """Return a finished response carrying usage (an answer with nothing else to show)."""
    return {
        "type": "response.done",
        "response": {
            "id": "resp_example",
            "object": "realtime.response",
            "status": "completed",
            "status_details": None,
            "output": [],
            "conversation_id": "conv_example",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
            "usage": usage,
            "metadata": None,
        },
    }


def _transcription_done(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_example",
        "content_index": 0,
        "transcript": "Hello, how are you?",
        "usage": usage,
    }


def _limit_goodbye_asked(call: SimulatedCall) -> bool:
    """Return whether the box asked for its spending-limit goodbye (then nothing more is said)."""
    creates = _client(call, "response.create")
    return any("spending limit" in e.get("response", {}).get("instructions", "") for e in creates)
