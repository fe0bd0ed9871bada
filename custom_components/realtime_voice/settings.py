"""SessionSettings: an account's key and a box's data and options, read once into typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API

from .audio import DuplexMode, is_default
from .budget import BudgetLimits
from .const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_ALLOWED_ACTIONS,
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_BUDGET_CONVERSATION,
    CONF_BUDGET_DAILY,
    CONF_BUDGET_MONTHLY,
    CONF_CONFIRM_RISKY_ACTIONS,
    CONF_CONTEXT_LIMIT,
    CONF_DUPLEX,
    CONF_GREETING,
    CONF_HIGH_PASS_FILTER,
    CONF_IDLE_TIMEOUT,
    CONF_INPUT_DEVICE,
    CONF_INSTRUCTIONS,
    CONF_MAX_DURATION,
    CONF_MAX_TOOL_CALLS,
    CONF_MODEL,
    CONF_NOISE_REDUCTION,
    CONF_NOISE_SUPPRESSION,
    CONF_OUTPUT_DEVICE,
    CONF_PRICES,
    CONF_REASONING_EFFORT,
    CONF_RETENTION_RATIO,
    CONF_RISKY_ENTITIES,
    CONF_TOOL_TIMEOUT,
    CONF_TRANSCRIPTION_LANGUAGE,
    CONF_TRANSCRIPTION_MODEL,
    CONF_TURN_DETECTION,
    CONF_USER_TOOLS,
    CONF_VAD_EAGERNESS,
    CONF_VOICE,
    DEFAULT_BASE_URL,
    LOGGER,
    MAX_MAX_DURATION,
    AudioBackendChoice,
)
from .models_catalog import takes_reasoning
from .options import value
from .pricing import (
    ModelPrices,
    TranscriptionPrices,
    model_prices,
    parse_price_overrides,
    transcription_prices,
)
from .realtime.session_config import (
    REASONING_EFFORTS,
    ReasoningEffort,
    Truncation,
    TurnDetection,
)
from .tools import ToolPolicy
from .user_tools import parse_user_tools


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What one box's conversations are made of."""

    api_key: str = field(repr=False)
    base_url: str
    model: str
    instructions: str
    voice: str
    greeting: str | None
    idle_timeout: float
    """Seconds of silence from both sides that end a conversation."""
    max_duration: float
    """Minutes after which a conversation ends, whatever happens."""
    duplex: DuplexMode
    noise_suppression: bool
    """On the box, before sending (WebRTC's noise suppressor)."""
    high_pass_filter: bool
    noise_reduction: Literal["near_field", "far_field"] | None
    """At OpenAI, before its VAD and the model."""
    turn_detection: TurnDetection
    transcription_model: str | None
    transcription_language: str | None
    audio_backend: AudioBackendChoice
    input_device: str | None
    output_device: str | None
    tool_policy: ToolPolicy
    reasoning_effort: ReasoningEffort | None
    """Sent only to models that reason; None leaves the model's own."""
    truncation: Truncation | None
    """None: OpenAI's automatic truncation at the model's context size."""
    prices: ModelPrices
    transcription_prices: TranscriptionPrices
    budget: BudgetLimits

    @classmethod
    def from_box(cls, account: Mapping[str, Any], box: Mapping[str, Any]) -> SessionSettings:
        """Read the account's key and endpoint and the box's data; options default as listed."""
        model = value(box, CONF_MODEL) or value({}, CONF_MODEL)
        transcription_model = value(box, CONF_TRANSCRIPTION_MODEL)
        overrides = _price_overrides(box)
        return cls(
            api_key=account[CONF_API_KEY],
            base_url=account.get(CONF_BASE_URL) or DEFAULT_BASE_URL,
            model=model,
            instructions=value(box, CONF_INSTRUCTIONS),
            voice=value(box, CONF_VOICE) or value({}, CONF_VOICE),
            greeting=value(box, CONF_GREETING) or None,
            idle_timeout=float(value(box, CONF_IDLE_TIMEOUT)),
            max_duration=min(float(value(box, CONF_MAX_DURATION)), MAX_MAX_DURATION),
            duplex=DuplexMode(value(box, CONF_DUPLEX)),
            noise_suppression=bool(value(box, CONF_NOISE_SUPPRESSION)),
            high_pass_filter=bool(value(box, CONF_HIGH_PASS_FILTER)),
            noise_reduction=_noise_reduction(box),
            turn_detection=_turn_detection(box),
            transcription_model=transcription_model or None,
            transcription_language=value(box, CONF_TRANSCRIPTION_LANGUAGE) or None,
            audio_backend=AudioBackendChoice(box.get(CONF_AUDIO_BACKEND, AudioBackendChoice.AUTO)),
            input_device=_device(box.get(CONF_INPUT_DEVICE)),
            output_device=_device(box.get(CONF_OUTPUT_DEVICE)),
            tool_policy=ToolPolicy(
                llm_apis=_llm_apis(value(box, CONF_LLM_HASS_API)),
                allow_risky=bool(value(box, CONF_ALLOW_RISKY_ACTIONS)),
                confirm_risky=bool(value(box, CONF_CONFIRM_RISKY_ACTIONS)),
                risky_entities=frozenset(value(box, CONF_RISKY_ENTITIES) or ()),
                timeout=float(value(box, CONF_TOOL_TIMEOUT)),
                max_calls_per_turn=int(value(box, CONF_MAX_TOOL_CALLS)),
                user_tools=parse_user_tools(value(box, CONF_USER_TOOLS) or ()),
                allowed_actions=frozenset(value(box, CONF_ALLOWED_ACTIONS) or ()),
            ),
            reasoning_effort=_reasoning_effort(model, box),
            truncation=_truncation(box),
            prices=model_prices(model, overrides),
            transcription_prices=transcription_prices(transcription_model, overrides),
            budget=BudgetLimits(
                daily=_limit(value(box, CONF_BUDGET_DAILY)),
                monthly=_limit(value(box, CONF_BUDGET_MONTHLY)),
                per_conversation=_limit(value(box, CONF_BUDGET_CONVERSATION)),
            ),
        )


def _reasoning_effort(model: str, options: Mapping[str, Any]) -> ReasoningEffort | None:
    """Return the chosen effort for a model that reasons; None for "the model's own"."""
    effort = value(options, CONF_REASONING_EFFORT)
    if effort in REASONING_EFFORTS and takes_reasoning(model):
        return cast("ReasoningEffort", effort)
    return None


def _truncation(options: Mapping[str, Any]) -> Truncation | None:
    """Return the truncation with a context limit, or None for OpenAI's automatic one."""
    if not (limit := int(value(options, CONF_CONTEXT_LIMIT) or 0)):
        return None
    ratio = float(value(options, CONF_RETENTION_RATIO) or value({}, CONF_RETENTION_RATIO))
    return Truncation(retention_ratio=ratio, post_instructions_tokens=limit)


def _limit(value: float | None) -> float | None:
    """Return a USD limit; empty or 0 switches it off."""
    return float(value) if value else None


def _price_overrides(options: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Return the valid price overrides (the options flow refuses invalid ones)."""
    try:
        return parse_price_overrides(value(options, CONF_PRICES))
    except ValueError as err:
        LOGGER.warning("Ignoring the price overrides: %s", err)
        return {}


def _turn_detection(options: Mapping[str, Any]) -> TurnDetection:
    if value(options, CONF_TURN_DETECTION) == "semantic_vad":
        return TurnDetection(type="semantic_vad", eagerness=value(options, CONF_VAD_EAGERNESS))
    return TurnDetection()


def _noise_reduction(options: Mapping[str, Any]) -> Literal["near_field", "far_field"] | None:
    chosen = value(options, CONF_NOISE_REDUCTION)
    return "near_field" if chosen == "near_field" else "far_field" if chosen != "off" else None


def _device(name: str | None) -> str | None:
    """Return the device name, None for the system default."""
    return None if is_default(name) else name


def _llm_apis(apis: str | list[str] | None) -> tuple[str, ...]:
    if not apis:
        return ()
    return (apis,) if isinstance(apis, str) else tuple(apis)
