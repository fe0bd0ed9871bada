"""What a simulated Realtime conversation bills, and what transcribing the user costs.

Every answer re-reads the context, with caching and truncation.

The model, stated so that tests and the bench (tests/bench/cost.py) can rely on it:
- Audio is 10 tokens a second in and 20 out (OpenAI's rule of thumb, research notes
  s2-anchors-refresh §2.1); text is a token per 4 characters.
- Every answer reads the instructions (tools included) and the whole conversation so far as input;
  its own output then joins the conversation (the assistant's audio as audio, its transcript as
  text), as OpenAI's usage documentation says ("output from previous turns ... will become the
  input for later turns").
- What the previous answer read is cached for the next one (prompt caching: a prefix of at least
  1,024 tokens, counted in steps of 128), as long as it is still the start of the input.
- Truncation (the session's `truncation`): once the conversation after the instructions exceeds
  the limit (`token_limits.post_instructions`, else the model's context minus its longest
  output), the oldest items are dropped until `retention_ratio` of the limit is left (all of it
  for `auto`). The instructions stay cached; the conversation after them has to be read anew.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from typing import Final

from .events import JsonObject, generation_2_or_later

AUDIO_TOKENS_PER_INPUT_SECOND: Final = 10
AUDIO_TOKENS_PER_OUTPUT_SECOND: Final = 20
CHARACTERS_PER_TOKEN: Final = 4
CACHE_MINIMUM: Final = 1024
CACHE_STEP: Final = 128
_LARGE_CONTEXT: Final = (128_000, 32_000)
"""Context and longest output of gpt-realtime-2 and later (model pages)."""
_SMALL_CONTEXT: Final = (32_000, 4_096)
"""Of the earlier models (gpt-realtime, -mini, -1.5)."""


def text_tokens(text: str) -> int:
    """Return the tokens of a text (at least one)."""
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))


def input_limit(model: str) -> int:
    """Return how many tokens a model reads at most: its context minus its longest output."""
    context, output = _LARGE_CONTEXT if generation_2_or_later(model) else _SMALL_CONTEXT
    return context - output


@dataclass(slots=True)
class _Item:
    """One conversation item's tokens."""

    text: int = 0
    audio: int = 0

    @property
    def tokens(self) -> int:
        return self.text + self.audio


class ConversationContext:
    """The tokens of one session's conversation, and what each answer is billed."""

    def __init__(self, session: JsonObject) -> None:
        self.session = session
        """The effective session config (read at each answer: it may change)."""
        self._items: list[_Item] = []
        self._cached_prefix = 0
        """How many tokens at the start of the input the previous answer read."""
        self.truncations = 0

    def add_user_audio(self, seconds: float) -> None:
        """Add a committed user utterance."""
        self._items.append(_Item(audio=round(seconds * AUDIO_TOKENS_PER_INPUT_SECOND)))

    def add_text(self, text: str) -> None:
        """Add a text item: typed user text, a function call's output."""
        self._items.append(_Item(text=text_tokens(text)))

    def answer(self, *, output_text: int, output_audio: int) -> JsonObject:
        """Return the `usage` of an answer with this output, which then joins the conversation."""
        self._truncate()
        instructions = self._instruction_tokens()
        text = instructions + sum(item.text for item in self._items)
        audio = sum(item.audio for item in self._items)
        cached_text, cached_audio = self._cached_split(instructions)
        self._cached_prefix = text + audio
        self._items.append(_Item(text=output_text, audio=output_audio))
        return usage_block(
            text=text,
            audio=audio,
            cached_text=cached_text,
            cached_audio=cached_audio,
            output_text=output_text,
            output_audio=output_audio,
        )

    def _instruction_tokens(self) -> int:
        tools = json.dumps(self.session.get("tools") or [])
        return text_tokens(str(self.session.get("instructions") or "") + tools)

    def _cached_split(self, instructions: int) -> tuple[int, int]:
        """Return the cached text and audio tokens: the previous input, in cache steps."""
        prefix = self._cached_prefix
        if prefix < CACHE_MINIMUM:
            return 0, 0
        left = prefix - prefix % CACHE_STEP
        cached_text = min(left, instructions)
        cached_audio = 0
        left -= cached_text
        for item in self._items:
            if left <= 0:
                break
            take_text = min(left, item.text)
            take_audio = min(left - take_text, item.audio)
            cached_text, cached_audio = cached_text + take_text, cached_audio + take_audio
            left -= take_text + take_audio
        return cached_text, cached_audio

    def _truncate(self) -> None:
        """Drop the oldest items once the conversation outgrows the session's limit."""
        setting = self.session.get("truncation") or "auto"
        if setting == "disabled":
            return
        limit = input_limit(str(self.session.get("model") or ""))
        ratio = 1.0
        if isinstance(setting, dict):
            ratio = float(setting["retention_ratio"])
            limit = (setting.get("token_limits") or {}).get("post_instructions") or limit
        if sum(item.tokens for item in self._items) <= limit:
            return
        while self._items and sum(item.tokens for item in self._items) > ratio * limit:
            self._items.pop(0)
        self.truncations += 1
        self._cached_prefix = min(self._cached_prefix, self._instruction_tokens())


def usage_block(
    *,
    text: int,
    audio: int,
    cached_text: int,
    cached_audio: int,
    output_text: int,
    output_audio: int,
) -> JsonObject:
    """Return a response `usage` object in the GA shape (cached input is part of the input)."""
    input_tokens, output_tokens = text + audio, output_text + output_audio
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": text,
            "audio_tokens": audio,
            "image_tokens": 0,
            "cached_tokens": cached_text + cached_audio,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached_audio,
                "image_tokens": 0,
            },
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def transcription_usage(model: str, seconds: float, transcript: str) -> JsonObject:
    """Return a transcription's `usage`: whisper-1 bills the duration, the others tokens."""
    if model == "whisper-1":
        return {"type": "duration", "seconds": round(seconds, 3)}
    audio, output = round(seconds * AUDIO_TOKENS_PER_INPUT_SECOND), text_tokens(transcript)
    return {
        "type": "tokens",
        "input_tokens": audio,
        "output_tokens": output,
        "total_tokens": audio + output,
        "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
    }
