"""What OpenAI charges per model, in one place, and what a response or a transcription cost.

USD per million tokens, from OpenAI's model pages as of 2026-12 (research notes
s2-anchors-refresh §2.1; transcription: the gpt-4o(-mini)-transcribe and whisper-1 pages). The
user may override any of them in the options; a model not in the table is priced as the dearest
current one, so that an estimate and a budget err on the safe side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from .models_catalog import HIGHER_QUALITY_MODEL, base_model
from .realtime.events import TranscriptionUsage, Usage

_MILLION: Final = 1_000_000
_SECONDS_PER_MINUTE: Final = 60


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of one modality."""

    input: float
    cached_input: float
    output: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """A Realtime model's prices: text, audio and image; input, cached input, output."""

    text: Rates
    audio: Rates
    image: Rates

    def cost(self, usage: Usage) -> float:
        """Return what one response's usage costs, in USD."""
        return (
            usage.input_text * self.text.input
            + usage.input_cached_text * self.text.cached_input
            + usage.output_text * self.text.output
            + usage.input_audio * self.audio.input
            + usage.input_cached_audio * self.audio.cached_input
            + usage.output_audio * self.audio.output
            + usage.input_image * self.image.input
            + usage.input_cached_image * self.image.cached_input
        ) / _MILLION


@dataclass(frozen=True, slots=True)
class TranscriptionPrices:
    """A transcription model's prices: per million tokens, or per minute of audio."""

    audio_input: float = 0.0
    text_input: float = 0.0
    text_output: float = 0.0
    per_minute: float = 0.0
    """For models that bill the audio's duration."""

    def cost(self, usage: TranscriptionUsage) -> float:
        """Return what transcribing one utterance cost, in USD."""
        tokens = (
            usage.input_audio * self.audio_input
            + usage.input_text * self.text_input
            + usage.output_text * self.text_output
        ) / _MILLION
        return tokens + usage.seconds / _SECONDS_PER_MINUTE * self.per_minute


_REALTIME_2: Final = ModelPrices(
    text=Rates(4.0, 0.40, 24.0), audio=Rates(32.0, 0.40, 64.0), image=Rates(5.0, 0.50)
)
_REALTIME_1: Final = replace(_REALTIME_2, text=Rates(4.0, 0.40, 16.0))
_REALTIME_MINI: Final = ModelPrices(
    text=Rates(0.60, 0.06, 2.40), audio=Rates(10.0, 0.30, 20.0), image=Rates(0.80, 0.08)
)
_PREVIEW: Final = ModelPrices(
    text=Rates(5.0, 2.50, 20.0), audio=Rates(40.0, 2.50, 80.0), image=Rates(5.0, 2.50)
)
_PREVIEW_MINI: Final = ModelPrices(
    text=Rates(0.60, 0.30, 2.40), audio=Rates(10.0, 0.30, 20.0), image=Rates(0.60, 0.30)
)

MODEL_PRICES: Final[Mapping[str, ModelPrices]] = {
    "gpt-realtime-2.1": _REALTIME_2,
    "gpt-realtime-2.1-mini": _REALTIME_MINI,
    "gpt-realtime-2": _REALTIME_2,
    "gpt-realtime-1.5": _REALTIME_1,
    "gpt-realtime": _REALTIME_1,
    "gpt-realtime-mini": _REALTIME_MINI,
    "gpt-4o-realtime-preview": _PREVIEW,
    "gpt-4o-mini-realtime-preview": _PREVIEW_MINI,
}
"""Per model, without its dated snapshot suffix (legacy models included)."""

TRANSCRIPTION_PRICES: Final[Mapping[str, TranscriptionPrices]] = {
    "gpt-4o-mini-transcribe": TranscriptionPrices(3.0, 1.25, 5.0),
    "gpt-4o-transcribe": TranscriptionPrices(6.0, 2.50, 10.0),
    "whisper-1": TranscriptionPrices(per_minute=0.006),
    "gpt-live-transcribe": TranscriptionPrices(per_minute=0.017),
}
_UNKNOWN_TRANSCRIPTION: Final = TranscriptionPrices(6.0, 2.50, 10.0, per_minute=0.017)
"""The dearest of each kind above."""


def model_prices(model: str, overrides: Mapping[str, Any] | None = None) -> ModelPrices:
    """Return the model's prices (the dearest current ones if unknown), with the overrides."""
    prices = MODEL_PRICES.get(base_model(model), MODEL_PRICES[HIGHER_QUALITY_MODEL])
    for modality, rates in (overrides or {}).items():
        if modality in ("text", "audio", "image"):
            prices = replace(prices, **{modality: replace(getattr(prices, modality), **rates)})
    return prices


def transcription_prices(
    model: str | None, overrides: Mapping[str, Any] | None = None
) -> TranscriptionPrices:
    """Return the transcription model's prices, with the overrides."""
    prices = TRANSCRIPTION_PRICES.get(base_model(model or ""), _UNKNOWN_TRANSCRIPTION)
    return replace(prices, **(overrides or {}).get("transcription", {}))


def parse_price_overrides(value: object) -> dict[str, dict[str, float]]:
    """Check the options' price overrides; raise ValueError saying what is wrong.

    The shape: `{text|audio|image: {input, cached_input, output}, transcription: {audio_input,
    text_input, text_output, per_minute}}`, every part optional, USD per million tokens.
    """
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        raise ValueError("the price overrides must be a mapping")  # noqa: TRY004 - form input
    allowed = {name: _field_names(Rates) for name in ("text", "audio", "image")}
    allowed["transcription"] = _field_names(TranscriptionPrices)
    return {
        section: _parse_rates(section, rates, allowed.get(section))
        for section, rates in value.items()
    }


def _field_names(kind: type) -> frozenset[str]:
    return frozenset(part.name for part in fields(kind))


def _parse_rates(section: str, rates: object, allowed: frozenset[str] | None) -> dict[str, float]:
    if allowed is None:
        raise ValueError(f"unknown price section {section!r}")
    if not isinstance(rates, dict):
        raise ValueError(f"{section} must be a mapping")  # noqa: TRY004 - form input
    parsed: dict[str, float] = {}
    for name, price in rates.items():
        if name not in allowed:
            raise ValueError(f"unknown price {section}.{name}")
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise ValueError(f"{section}.{name} must be a number, at least 0")
        parsed[name] = float(price)
    return parsed
