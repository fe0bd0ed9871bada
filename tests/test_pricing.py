"""Usage parsing, prices per model, spending limits and the model catalogue (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from custom_components.realtime_voice.budget import (
    BudgetLimits,
    LimitKind,
    Spend,
    limit_reached,
    reserve,
)
from custom_components.realtime_voice.models_catalog import (
    realtime_models,
    replacement_for,
    takes_reasoning,
)
from custom_components.realtime_voice.pricing import (
    model_prices,
    parse_price_overrides,
    transcription_prices,
)
from custom_components.realtime_voice.realtime.events import (
    InputTranscriptCompleted,
    ResponseDone,
    TranscriptionUsage,
    Usage,
    parse_server_event,
)
from custom_components.realtime_voice.realtime.http import ModelInfo, parse_models

from .bench.cost import estimates

# OpenAI's own examples, verbatim: the GA `response.done` usage of the API reference, and the
# `usage` of its `conversation.item.input_audio_transcription.completed` example.
GA_RESPONSE_USAGE = {
    "total_tokens": 253,
    "input_tokens": 132,
    "output_tokens": 121,
    "input_token_details": {
        "text_tokens": 119,
        "audio_tokens": 13,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 30, "audio_tokens": 91},
}
TRANSCRIPTION_USAGE = {
    "type": "tokens",
    "total_tokens": 22,
    "input_tokens": 13,
    "input_token_details": {"text_tokens": 0, "audio_tokens": 13},
    "output_tokens": 9,
}


def _response_done(usage: dict[str, object]) -> ResponseDone:
    event = parse_server_event(
        {
            "type": "response.done",
            "event_id": "event_1",
            "response": {"id": "resp_1", "status": "completed", "usage": usage},
        }
    )
    assert isinstance(event, ResponseDone)
    return event


def test_the_token_count_is_openais_total_tokens() -> None:
    """Cached input is part of the input: OpenAI's example counts 253 tokens, and so do we."""
    usage = _response_done(GA_RESPONSE_USAGE).usage
    assert usage.total == GA_RESPONSE_USAGE["total_tokens"]
    assert usage == Usage(
        input_text=55, input_cached_text=64, input_audio=13, output_text=30, output_audio=91
    )


def test_transcription_usage_in_both_shapes() -> None:
    """Token-billed transcription as OpenAI's example; duration-billed as seconds."""
    event = parse_server_event(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "event_2",
            "item_id": "item_1",
            "content_index": 0,
            "transcript": "Hello, how are you?",
            "usage": TRANSCRIPTION_USAGE,
        }
    )
    assert isinstance(event, InputTranscriptCompleted)
    assert event.usage == TranscriptionUsage(input_audio=13, output_text=9)
    assert event.usage.total == TRANSCRIPTION_USAGE["total_tokens"]
    duration = parse_server_event(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_2",
            "transcript": "Hi",
            "usage": {"type": "duration", "seconds": 2.5},
        }
    )
    assert isinstance(duration, InputTranscriptCompleted)
    assert duration.usage == TranscriptionUsage(seconds=2.5)


def test_prices_follow_the_model_and_the_modality() -> None:
    """The same usage costs what each model charges; cached text and audio have their own prices."""
    usage = Usage(
        input_text=1_000_000,
        input_cached_text=1_000_000,
        input_audio=1_000_000,
        input_cached_audio=1_000_000,
        output_text=1_000_000,
        output_audio=1_000_000,
        input_image=1_000_000,
        input_cached_image=1_000_000,
    )
    assert model_prices("gpt-realtime-2.1").cost(usage) == pytest.approx(
        4 + 0.40 + 32 + 0.40 + 24 + 64 + 5 + 0.50
    )
    assert model_prices("gpt-realtime-2.1-mini").cost(usage) == pytest.approx(
        0.60 + 0.06 + 10 + 0.30 + 2.40 + 20 + 0.80 + 0.08
    )
    assert model_prices("gpt-realtime-mini-2025-10-06") == model_prices("gpt-realtime-mini")
    assert model_prices("gpt-realtime-2025-08-28").text.output == 16  # not gpt-realtime-2's 24
    assert model_prices("gpt-4o-realtime-preview-2024-12-17").audio.input == 40
    assert model_prices("somebody-elses-model") == model_prices("gpt-realtime-2.1")


def test_the_ga_example_costs_what_each_model_charges() -> None:
    """Mini prices the example at about a third of 2.1, not at gpt-realtime's prices."""
    usage = _response_done(GA_RESPONSE_USAGE).usage
    full = (55 * 4 + 64 * 0.40 + 13 * 32 + 30 * 24 + 91 * 64) / 1e6
    mini = (55 * 0.60 + 64 * 0.06 + 13 * 10 + 30 * 2.40 + 91 * 20) / 1e6
    assert model_prices("gpt-realtime-2.1").cost(usage) == pytest.approx(full)
    assert model_prices("gpt-realtime-2.1-mini").cost(usage) == pytest.approx(mini)


def test_transcription_is_priced_by_its_own_model() -> None:
    """Tokens at the transcription model's prices; whisper-1 by the minute."""
    tokens = TranscriptionUsage(input_audio=13, output_text=9)
    assert transcription_prices("gpt-4o-mini-transcribe").cost(tokens) == pytest.approx(
        (13 * 3 + 9 * 5) / 1e6
    )
    assert transcription_prices("gpt-4o-transcribe").cost(tokens) == pytest.approx(
        (13 * 6 + 9 * 10) / 1e6
    )
    assert transcription_prices("whisper-1").cost(TranscriptionUsage(seconds=90)) == pytest.approx(
        0.009
    )


def test_price_overrides() -> None:
    """Overrides replace single prices; a wrong shape is refused with a reason."""
    overrides = parse_price_overrides(
        {"audio": {"output": 15}, "transcription": {"per_minute": 0.01}}
    )
    prices = model_prices("gpt-realtime-2.1-mini", overrides)
    assert prices.audio.output == 15
    assert prices.audio.input == 10
    assert transcription_prices("whisper-1", overrides).per_minute == 0.01
    assert parse_price_overrides(None) == {}
    for bad, reason in (
        ([1, 2], "mapping"),
        ({"video": {"input": 1}}, "unknown price section"),
        ({"audio": {"inputs": 1}}, "unknown price audio.inputs"),
        ({"audio": {"input": -1}}, "at least 0"),
        ({"audio": {"input": "ten"}}, "must be a number"),
        ({"audio": 3}, "must be a mapping"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_price_overrides(bad)


def test_a_limit_keeps_room_for_the_next_answer_and_a_goodbye() -> None:
    """A limit is reached when twice the dearest answer no longer fits under it."""
    prices = model_prices("gpt-realtime-2.1-mini")
    typical = reserve(prices, 0.0) / 2
    assert 0.002 < typical < 0.005  # a first answer on mini costs a few tenths of a cent
    limits = BudgetLimits(daily=1.0, monthly=10.0, per_conversation=0.10)
    assert limit_reached(limits, Spend(0.5, 5.0, 0.05), reserve(prices, 0.01)) is None
    reached = limit_reached(limits, Spend(0.5, 5.0, 0.085), reserve(prices, 0.01))
    assert reached is not None
    assert reached.kind is LimitKind.CONVERSATION
    reached = limit_reached(limits, Spend(0.995, 5.0, 0.0), reserve(prices, 0.0))
    assert reached is not None
    assert reached.kind is LimitKind.DAILY
    assert limit_reached(BudgetLimits(), Spend(1e6, 1e6, 1e6), 1.0) is None


def test_models_current_first_and_their_replacements() -> None:
    """The account's Realtime models, current first; a retiring one moves to its tier's model."""
    listed = parse_models(
        {
            "data": [
                {"id": "gpt-realtime", "created": 1, "shutdown_date": "2027-01-19"},
                {"id": "gpt-realtime-mini", "created": 2, "shutdown_date": "2027-01-19"},
                {"id": "gpt-realtime-2.1", "created": 4},
                {"id": "gpt-realtime-2", "created": 3},
                {"id": "gpt-realtime-2.1-mini", "created": 5},
                {"id": "gpt-4o-mini-transcribe", "created": 6},
                {"id": "whisper-1", "created": 7},
                {"object": "model"},
            ]
        }
    )
    ordered = [info.id for info in realtime_models(listed)]
    assert ordered == [
        "gpt-realtime-2.1-mini",
        "gpt-realtime-2.1",
        "gpt-realtime-2",
        "gpt-realtime-mini",
        "gpt-realtime",
    ]
    assert listed[0] == ModelInfo("gpt-realtime", 1, date(2027, 1, 19))
    assert replacement_for("gpt-realtime", listed) == "gpt-realtime-2.1"
    assert replacement_for("gpt-realtime-mini-2025-10-06", listed) == "gpt-realtime-2.1-mini"
    assert replacement_for("gpt-realtime-mini") == "gpt-realtime-2.1-mini"
    assert replacement_for("gpt-4o-realtime-preview") == "gpt-realtime-2.1"
    retiring_mini = [ModelInfo("gpt-realtime-2.1-mini", 5, date(2028, 1, 1)), listed[2]]
    assert replacement_for("gpt-realtime-2.1-mini", retiring_mini) == "gpt-realtime-2.1"
    assert replacement_for("gpt-realtime-2.1") == "gpt-realtime-2.1-mini"


def test_which_models_reason() -> None:
    """reasoning.effort from gpt-realtime-2 on; a dated snapshot is not a version."""
    assert takes_reasoning("gpt-realtime-2")
    assert takes_reasoning("gpt-realtime-2.1-mini")
    assert not takes_reasoning("gpt-realtime-1.5")
    assert not takes_reasoning("gpt-realtime-mini")
    assert not takes_reasoning("gpt-realtime-2025-08-28")


def test_the_bench_cost_estimate() -> None:
    """The bench's USD per minute: the integration's prices on the simulator's usage.

    2.1 costs about three times mini; a bounded context pays off in long conversations.
    """
    rows = {(row.model, row.truncation): row for row in estimates()}
    full, mini = rows["gpt-realtime-2.1", "auto"], rows["gpt-realtime-2.1-mini", "auto"]
    assert 2.5 < full.usd_per_minute / mini.usd_per_minute < 3.5
    assert 0.05 < full.usd_per_minute < 0.15
    assert full.cached_share > 0.9
    bounded = rows["gpt-realtime-2.1-mini", "4k@0.5"]
    assert bounded.last_input_tokens < full.last_input_tokens / 2
    assert bounded.longer[-1] < mini.longer[-1] * 0.6  # 55 minutes: about half the cost
