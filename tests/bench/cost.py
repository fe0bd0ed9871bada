"""Estimated USD per minute of conversation: a computation over the simulator's usage model.

    python -m tests.bench.cost        prints the table (scripts/bench adds it to its results)

A conversation of 10 (and 30, 55) minutes, a turn every 10 s: the user speaks 5 s (50 audio
tokens in), the assistant answers 5 s (100 audio tokens and a 20-token transcript out). Every
answer re-reads the instructions and the conversation so far, with prompt caching and truncation
exactly as tests/simulator/usage_model.py bills them; each user turn is transcribed by
gpt-4o-mini-transcribe. The usage is priced with the integration's own price table (pricing.py).
No network and no audio: the figures depend on the model above, not on the machine.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from typing import Any, Final

from custom_components.realtime_voice.budget import TYPICAL_FIRST_ANSWER
from custom_components.realtime_voice.pricing import model_prices, transcription_prices
from custom_components.realtime_voice.realtime.events import (
    parse_transcription_usage,
    parse_usage,
)
from tests.simulator.usage_model import (
    CHARACTERS_PER_TOKEN,
    ConversationContext,
    transcription_usage,
)

MINUTES: Final = 10
LONGER: Final = (30, 55)
"""Longer conversations, where a bounded context starts to pay (55: the box's longest)."""
USER_SECONDS: Final = 5.0
ANSWER_AUDIO_TOKENS: Final = 100
"""5 s of speech at 20 tokens a second."""
ANSWER_TEXT_TOKENS: Final = 20
"""The transcript of 5 s of speech (about 13 words)."""
INSTRUCTION_TOKENS: Final = TYPICAL_FIRST_ANSWER.input_text
"""Persona, Assist's prompt and its tools (~1,500 tokens for a small home)."""
TRANSCRIBER: Final = "gpt-4o-mini-transcribe"
MODELS: Final = ("gpt-realtime-2.1", "gpt-realtime-2.1-mini")
TRUNCATIONS: Final[dict[str, Any]] = {
    "auto": "auto",
    "4k@0.5": {
        "type": "retention_ratio",
        "retention_ratio": 0.5,
        "token_limits": {"post_instructions": 4000},
    },
}
"""OpenAI's automatic truncation (at the model's context), and a 4,000-token limit that keeps
half of it when it is reached (the README's advice for long conversations)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the simulated conversation cost."""

    model: str
    truncation: str
    usd_per_minute: float
    cached_share: float
    """Share of the input tokens billed as cached."""
    truncations: int
    last_input_tokens: int
    """What the last answer re-read: the context at the end."""
    longer: tuple[float, ...] = ()
    """USD per minute over the LONGER conversations."""


def estimate(model: str, truncation: str, minutes: float = MINUTES) -> Estimate:
    """Simulate the conversation and price it."""
    session = {
        "model": model,
        "instructions": "x" * (INSTRUCTION_TOKENS * CHARACTERS_PER_TOKEN),
        "truncation": TRUNCATIONS[truncation],
    }
    context = ConversationContext(session)
    prices, transcribing = model_prices(model), transcription_prices(TRANSCRIBER)
    turns = round(minutes * 60 / (USER_SECONDS + ANSWER_AUDIO_TOKENS / 20))
    cost = cached = read = 0.0
    last_input = 0
    for _turn in range(turns):
        context.add_user_audio(USER_SECONDS)
        heard = transcription_usage(TRANSCRIBER, USER_SECONDS, "x" * 52)
        cost += transcribing.cost(parse_transcription_usage(heard))
        usage = context.answer(output_text=ANSWER_TEXT_TOKENS, output_audio=ANSWER_AUDIO_TOKENS)
        cost += prices.cost(parse_usage(usage))
        last_input = usage["input_tokens"]
        read += last_input
        cached += usage["input_token_details"]["cached_tokens"]
    return Estimate(
        model, truncation, cost / minutes, cached / read, context.truncations, last_input
    )


def estimates() -> list[Estimate]:
    """Return every model with every truncation, over MINUTES and the LONGER conversations."""
    return [
        replace(
            estimate(model, truncation),
            longer=tuple(estimate(model, truncation, m).usd_per_minute for m in LONGER),
        )
        for model in MODELS
        for truncation in TRUNCATIONS
    ]


def table(rows: list[Estimate]) -> str:
    """Return the estimates as a Markdown table."""
    longer = " | ".join(f"USD/min over {minutes} min" for minutes in LONGER)
    header = (
        f"| model | truncation | USD/min over {MINUTES} min | cached input | truncations | "
        f"context at the end | {longer} |"
    )
    lines = [header, "|---|---|---|---|---|---|" + "---|" * len(LONGER)]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(row: Estimate) -> str:
    longer = " | ".join(f"{value:.4f}" for value in row.longer)
    return (
        f"| {row.model} | {row.truncation} | {row.usd_per_minute:.4f} | "
        f"{row.cached_share:.0%} | {row.truncations} | {row.last_input_tokens:,} | {longer} |"
    )


def main() -> None:
    """Print the table."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(table(estimates()))  # noqa: T201


if __name__ == "__main__":
    main()
