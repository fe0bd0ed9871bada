"""Every option of a box, defined once: key, default, form field, section, and what it feeds.

The options form and SessionSettings both read this table, so adding an option is one row
here, its field in SessionSettings, and its strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import section
from homeassistant.helpers import llm
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    ObjectSelector,
    SelectOptionDict,
    Selector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from .audio import DuplexMode
from .const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_ALLOWED_ACTIONS,
    CONF_BUDGET_CONVERSATION,
    CONF_BUDGET_DAILY,
    CONF_BUDGET_MONTHLY,
    CONF_CONFIRM_RISKY_ACTIONS,
    CONF_CONTEXT_LIMIT,
    CONF_DUPLEX,
    CONF_GREETING,
    CONF_HIGH_PASS_FILTER,
    CONF_IDLE_TIMEOUT,
    CONF_INSTRUCTIONS,
    CONF_MAX_DURATION,
    CONF_MAX_TOOL_CALLS,
    CONF_MODEL,
    CONF_NOISE_REDUCTION,
    CONF_NOISE_SUPPRESSION,
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
    DEFAULT_INSTRUCTIONS,
    DEFAULT_MODEL,
    DEFAULT_VOICE,
    MAX_MAX_DURATION,
)
from .models_catalog import CURRENT_MODELS, realtime_models
from .realtime.http import ModelInfo
from .realtime.session_config import REASONING_EFFORTS, VOICES


class Section(StrEnum):
    """The sections of the options form, in the order shown."""

    PERSONA = "persona"
    LISTENING = "listening"
    CONTROL = "control"
    LIMITS = "limits"


@dataclass(frozen=True, slots=True)
class FormContext:
    """What some fields need to offer their choices."""

    hass: HomeAssistant
    listed: tuple[ModelInfo, ...] = ()
    """The Realtime models the account listed; empty offers the current ones."""


type SelectorFactory = Callable[[FormContext], Selector[Any]]


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a box."""

    key: str
    section: Section
    selector: SelectorFactory
    feeds: str
    """The SessionSettings field it ends up in (dotted for a field of a field)."""
    default: Any = None
    """None: optional, nothing stored means off or empty."""
    emptied: Any = None
    """Stored when the field is emptied in the form, if that must differ from the default."""


def _fixed(selector: Selector[Any]) -> SelectorFactory:
    return lambda _context: selector


def _select(options: Iterable[str], key: str) -> SelectorFactory:
    """Offer a dropdown whose labels are translated under the selector key."""
    return _fixed(
        SelectSelector(
            SelectSelectorConfig(
                options=list(options), mode=SelectSelectorMode.DROPDOWN, translation_key=key
            )
        )
    )


def _number(low: float, high: float, step: float, unit: str | None = None) -> SelectorFactory:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit:
        config["unit_of_measurement"] = unit
    return _fixed(NumberSelector(config))


def model_selector(context: FormContext) -> Selector[Any]:
    """Offer the account's Realtime models, current first; any other id may be typed."""
    ids = [info.id for info in realtime_models(context.listed)] or list(CURRENT_MODELS)
    return SelectSelector(
        SelectSelectorConfig(options=ids, custom_value=True, mode=SelectSelectorMode.DROPDOWN)
    )


def _llm_apis(context: FormContext) -> Selector[Any]:
    apis = [
        SelectOptionDict(value=api.id, label=api.name) for api in llm.async_get_apis(context.hass)
    ]
    return SelectSelector(SelectSelectorConfig(options=apis, multiple=True))


_TEXT = _fixed(TextSelector())
_SWITCH = _fixed(BooleanSelector())
_YAML = _fixed(ObjectSelector())
_USD = _number(0, 10_000, 0.01, "USD")

OPTIONS: Final[tuple[Option, ...]] = (
    # Persona and voice
    Option(
        CONF_INSTRUCTIONS,
        Section.PERSONA,
        _fixed(TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT, multiline=True))),
        "instructions",
        DEFAULT_INSTRUCTIONS,
    ),
    Option(CONF_VOICE, Section.PERSONA, _select(VOICES, CONF_VOICE), "voice", DEFAULT_VOICE),
    Option(CONF_MODEL, Section.PERSONA, model_selector, "model", DEFAULT_MODEL),
    Option(
        CONF_REASONING_EFFORT,
        Section.PERSONA,
        _select(["auto", *REASONING_EFFORTS], CONF_REASONING_EFFORT),
        "reasoning_effort",
        "auto",
    ),
    Option(CONF_GREETING, Section.PERSONA, _TEXT, "greeting"),
    # Listening
    Option(
        CONF_IDLE_TIMEOUT, Section.LISTENING, _number(5, 600, 1, "s"), "idle_timeout", 30
    ),  # seconds of silence from both sides
    Option(
        CONF_MAX_DURATION,
        Section.LISTENING,
        _number(1, MAX_MAX_DURATION, 1, "min"),
        "max_duration",
        10,
    ),
    Option(
        CONF_DUPLEX,
        Section.LISTENING,
        _select([mode.value for mode in DuplexMode], CONF_DUPLEX),
        "duplex",
        DuplexMode.ECHO_CANCELLATION.value,
    ),
    Option(CONF_NOISE_SUPPRESSION, Section.LISTENING, _SWITCH, "noise_suppression", True),  # noqa: FBT003
    Option(CONF_HIGH_PASS_FILTER, Section.LISTENING, _SWITCH, "high_pass_filter", True),  # noqa: FBT003
    Option(
        CONF_NOISE_REDUCTION,
        Section.LISTENING,
        _select(["far_field", "near_field", "off"], CONF_NOISE_REDUCTION),
        "noise_reduction",
        "far_field",  # an open box, not a headset
    ),
    Option(
        CONF_TURN_DETECTION,
        Section.LISTENING,
        _select(["server_vad", "semantic_vad"], CONF_TURN_DETECTION),
        "turn_detection.type",
        "server_vad",
    ),
    Option(
        CONF_VAD_EAGERNESS,
        Section.LISTENING,
        _select(["auto", "low", "medium", "high"], CONF_VAD_EAGERNESS),
        "turn_detection.eagerness",
        "auto",
    ),
    Option(
        CONF_TRANSCRIPTION_MODEL,
        Section.LISTENING,
        _TEXT,
        "transcription_model",
        "gpt-4o-mini-transcribe",
        emptied="",  # an emptied field switches transcription off
    ),
    Option(CONF_TRANSCRIPTION_LANGUAGE, Section.LISTENING, _TEXT, "transcription_language"),
    # Home Assistant control
    Option(
        CONF_LLM_HASS_API,
        Section.CONTROL,
        _llm_apis,
        "tool_policy.llm_apis",
        [llm.LLM_API_ASSIST],
        emptied=[],  # an emptied field gives the assistant no control
    ),
    Option(
        CONF_ALLOW_RISKY_ACTIONS,
        Section.CONTROL,
        _SWITCH,
        "tool_policy.allow_risky",
        False,  # noqa: FBT003
    ),
    Option(
        CONF_CONFIRM_RISKY_ACTIONS,
        Section.CONTROL,
        _SWITCH,
        "tool_policy.confirm_risky",
        True,  # noqa: FBT003
    ),
    Option(
        CONF_RISKY_ENTITIES,
        Section.CONTROL,
        _fixed(EntitySelector(EntitySelectorConfig(multiple=True))),
        "tool_policy.risky_entities",
    ),
    Option(CONF_USER_TOOLS, Section.CONTROL, _YAML, "tool_policy.user_tools"),
    Option(
        CONF_ALLOWED_ACTIONS,
        Section.CONTROL,
        _fixed(TextSelector(TextSelectorConfig(multiple=True))),
        "tool_policy.allowed_actions",
    ),
    Option(CONF_TOOL_TIMEOUT, Section.CONTROL, _number(1, 60, 1, "s"), "tool_policy.timeout", 10),
    Option(
        CONF_MAX_TOOL_CALLS,
        Section.CONTROL,
        _number(1, 20, 1),
        "tool_policy.max_calls_per_turn",
        5,  # per user turn
    ),
    # Limits and cost
    Option(
        CONF_CONTEXT_LIMIT,
        Section.LIMITS,
        _number(0, 120_000, 500, "tokens"),
        "truncation.post_instructions_tokens",
        0,
    ),
    # Share of the context limit kept when it is reached: a deep cut happens seldom, and each
    # cut makes the next answer re-read the conversation uncached (tests/bench/cost.py).
    Option(
        CONF_RETENTION_RATIO,
        Section.LIMITS,
        _number(0.1, 1, 0.05),
        "truncation.retention_ratio",
        0.5,
    ),
    Option(CONF_BUDGET_DAILY, Section.LIMITS, _USD, "budget.daily"),
    Option(CONF_BUDGET_MONTHLY, Section.LIMITS, _USD, "budget.monthly"),
    Option(CONF_BUDGET_CONVERSATION, Section.LIMITS, _USD, "budget.per_conversation"),
    Option(CONF_PRICES, Section.LIMITS, _YAML, "prices"),
)

BY_KEY: Final = {option.key: option for option in OPTIONS}


def value(stored: Mapping[str, Any], key: str) -> Any:
    """Return an option's stored value, or its default."""
    return stored.get(key, BY_KEY[key].default)


def defaults() -> dict[str, Any]:
    """Return the options of a new box: every default there is."""
    return {option.key: option.default for option in OPTIONS if option.default is not None}


def fields(context: FormContext, keys: Iterable[str]) -> dict[Any, Any]:
    """Return the form fields of some options, without sections."""
    return {_marker(BY_KEY[key]): BY_KEY[key].selector(context) for key in keys}


def form_schema(context: FormContext) -> probatio.Schema:
    """Return the options form: one section per Section, each option in its own."""
    return probatio.Schema(
        {
            probatio.Required(part.value): section(
                probatio.Schema(fields(context, (o.key for o in OPTIONS if o.section is part))),
                {"collapsed": part is not Section.PERSONA},
            )
            for part in Section
        }
    )


def by_section(stored: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return stored options (defaults filled in) nested as the form shows them."""
    nested: dict[str, dict[str, Any]] = {part.value: {} for part in Section}
    for option in OPTIONS:
        if (current := value(stored, option.key)) is not None:
            nested[option.section.value][option.key] = current
    return nested


def from_form(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Return the options to store from the form's sections.

    A field emptied in the form arrives missing: stored as its `emptied` value where that
    differs from the default (the transcription model: off, not the default again).
    """
    flat = {option.key: option.emptied for option in OPTIONS if option.emptied is not None}
    for part in Section:
        flat.update(user_input.get(part.value, {}))
    return flat


def _marker(option: Option) -> probatio.Marker:
    """Return the field's marker: required with a default, optional where empty means off."""
    if option.default is None or option.emptied is not None:
        return probatio.Optional(option.key)
    return probatio.Required(option.key, default=option.default)
