"""Keys and constants of Realtime Voice (the options' defaults are in options.py)."""

from __future__ import annotations

from enum import StrEnum
import logging
from typing import Final, NamedTuple

from .models_catalog import RECOMMENDED_MODEL

DOMAIN: Final = "realtime_voice"
LOGGER: Final = logging.getLogger(__package__)

DEFAULT_BASE_URL: Final = "https://api.openai.com"
DEFAULT_MODEL: Final = RECOMMENDED_MODEL
DEFAULT_VOICE: Final = "marin"
DEFAULT_INSTRUCTIONS: Final = (
    "You are a friendly voice assistant for this home. Answer briefly, in one or two short "
    "sentences, in the language the user speaks. When the user says goodbye, call end_session."
)

# Entry data: the OpenAI account (changed by reauth / reconfigure).
CONF_BASE_URL: Final = "base_url"

# Box data (a config subentry per box): the audio library and devices, and the options below.
SUBENTRY_BOX: Final = "box"
CONF_AUDIO_BACKEND: Final = "audio_backend"
CONF_INPUT_DEVICE: Final = "input_device"
CONF_OUTPUT_DEVICE: Final = "output_device"

# Box options: their defaults, form fields and sections are in options.py.
CONF_INSTRUCTIONS: Final = "instructions"
CONF_VOICE: Final = "voice"
CONF_MODEL: Final = "model"
CONF_GREETING: Final = "greeting"
CONF_IDLE_TIMEOUT: Final = "idle_timeout"
CONF_MAX_DURATION: Final = "max_duration"
CONF_DUPLEX: Final = "duplex"
CONF_NOISE_SUPPRESSION: Final = "noise_suppression"  # on the box, before sending
CONF_HIGH_PASS_FILTER: Final = "high_pass_filter"  # noqa: S105 - a filter, not a password
CONF_NOISE_REDUCTION: Final = "noise_reduction"  # at OpenAI: near_field, far_field or off
CONF_TURN_DETECTION: Final = "turn_detection"
CONF_VAD_EAGERNESS: Final = "vad_eagerness"
CONF_TRANSCRIPTION_MODEL: Final = "transcription_model"
CONF_TRANSCRIPTION_LANGUAGE: Final = "transcription_language"
CONF_ALLOW_RISKY_ACTIONS: Final = "allow_risky_actions"
CONF_CONFIRM_RISKY_ACTIONS: Final = "confirm_risky_actions"
CONF_RISKY_ENTITIES: Final = "risky_entities"
CONF_TOOL_TIMEOUT: Final = "tool_timeout"
CONF_MAX_TOOL_CALLS: Final = "max_tool_calls"
CONF_USER_TOOLS: Final = "user_tools"
CONF_ALLOWED_ACTIONS: Final = "allowed_actions"
CONF_REASONING_EFFORT: Final = "reasoning_effort"
CONF_CONTEXT_LIMIT: Final = "context_limit"
CONF_RETENTION_RATIO: Final = "retention_ratio"
CONF_PRICES: Final = "prices"
CONF_BUDGET_DAILY: Final = "budget_daily"
CONF_BUDGET_MONTHLY: Final = "budget_monthly"
CONF_BUDGET_CONVERSATION: Final = "budget_conversation"

MAX_MAX_DURATION: Final = 55  # minutes: OpenAI ends every session at 60


class Box(NamedTuple):
    """Which box: its config subentry's id, and the title people know it by."""

    id: str
    title: str


class AudioBackendChoice(StrEnum):
    """Which audio library the box uses."""

    AUTO = "auto"
    SOUNDDEVICE = "sounddevice"
    PULSE = "pulse"


class EndReason(StrEnum):
    """Why a conversation ended, as the session_ended event reports it."""

    USER = "user"
    GOODBYE = "goodbye"
    IDLE = "idle"
    MAX_DURATION = "max_duration"
    EXPIRED = "expired"
    ERROR = "error"
    SHUTDOWN = "shutdown"
    BUDGET = "budget"


EVENT_SESSION_STARTED: Final = f"{DOMAIN}_session_started"
EVENT_SESSION_ENDED: Final = f"{DOMAIN}_session_ended"
EVENT_TRANSCRIPT: Final = f"{DOMAIN}_transcript"
EVENT_TOOL_CALL: Final = f"{DOMAIN}_tool_call"
EVENT_USAGE: Final = f"{DOMAIN}_usage"
