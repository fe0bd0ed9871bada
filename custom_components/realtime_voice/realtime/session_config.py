"""What a Realtime session is told: persona, voice, listening, tools, limits (GA shapes).

The glue builds these types; only this package turns them into the wire's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

type JsonObject = dict[str, Any]
type Voice = str
type TurnDetectionType = Literal["server_vad", "semantic_vad"]
type Eagerness = Literal["low", "medium", "high", "auto"]
type ReasoningEffort = Literal["minimal", "low", "medium", "high", "xhigh"]
type NoiseReduction = Literal["near_field", "far_field"]

VOICES: Final = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse"
)  # fmt: skip
REASONING_EFFORTS: Final[tuple[ReasoningEffort, ...]] = (
    "minimal",
    "low",
    "medium",
    "high",
    "xhigh",
)


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function the model may call; `parameters` is its arguments' JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def to_wire(self) -> JsonObject:
        """Return the session's `tools` entry."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """How the server decides that the user has finished speaking."""

    type: TurnDetectionType = "server_vad"
    eagerness: Eagerness = "auto"
    """semantic_vad only: how soon the model answers."""
    threshold: float = 0.5
    """server_vad only: speech probability (0-1) that starts a turn."""
    silence_duration_ms: int = 500
    """server_vad only: silence that ends a turn."""
    prefix_padding_ms: int = 300
    interrupt_response: bool = True
    """Speech during a response cancels it (barge-in)."""

    def to_wire(self) -> JsonObject:
        """Return the GA `audio.input.turn_detection` object."""
        common = {"create_response": True, "interrupt_response": self.interrupt_response}
        if self.type == "semantic_vad":
            return {"type": "semantic_vad", "eagerness": self.eagerness, **common}
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "silence_duration_ms": self.silence_duration_ms,
            "prefix_padding_ms": self.prefix_padding_ms,
            **common,
        }


@dataclass(frozen=True, slots=True)
class Truncation:
    """How the server drops the oldest turns once the conversation outgrows a token limit.

    Dropping more than needed (a retention ratio below 1) means fewer truncations, and each one
    invalidates the cached context, so the bill grows with the limit, not with the length.
    """

    retention_ratio: float = 0.5
    """Share of the limit kept when the conversation is cut."""
    post_instructions_tokens: int | None = None
    """The limit for the conversation after the instructions; None: the model's context."""

    def to_wire(self) -> JsonObject:
        """Return the GA `truncation` object (`type: retention_ratio`)."""
        wire: JsonObject = {"type": "retention_ratio", "retention_ratio": self.retention_ratio}
        if self.post_instructions_tokens:
            wire["token_limits"] = {"post_instructions": self.post_instructions_tokens}
        return wire


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What the session is told: persona, voice, listening and tools."""

    model: str = "gpt-realtime"
    instructions: str = ""
    voice: Voice = "marin"
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    """None switches transcription of the user's speech off."""
    transcription_language: str | None = None
    noise_reduction: Literal["near_field", "far_field"] | None = "far_field"
    tools: tuple[FunctionSpec, ...] = ()
    tool_choice: str = "auto"
    max_output_tokens: int | Literal["inf"] = "inf"
    reasoning_effort: ReasoningEffort | None = None
    """Only for models that reason (`gpt-realtime-2` and later); None leaves the model's own."""
    truncation: Truncation | None = None
    """None: OpenAI's automatic truncation, at the model's context size."""

    def to_wire(self) -> JsonObject:
        """Return the GA session object (`type: realtime`) for `session.update`.

        The model is left out: it is chosen when the call is created and cannot change after.
        """
        transcription: JsonObject | None = None
        if self.transcription_model:
            transcription = {"model": self.transcription_model}
            if self.transcription_language:
                transcription["language"] = self.transcription_language
        noise = {"type": self.noise_reduction} if self.noise_reduction else None
        optional: JsonObject = {}
        if self.reasoning_effort is not None:
            optional["reasoning"] = {"effort": self.reasoning_effort}
        return {
            **optional,
            "type": "realtime",
            "instructions": self.instructions,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "transcription": transcription,
                    "turn_detection": self.turn_detection.to_wire(),
                    "noise_reduction": noise,
                },
                "output": {"voice": self.voice},
            },
            "tools": [tool.to_wire() for tool in self.tools],
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "truncation": self.truncation.to_wire() if self.truncation else "auto",
        }

    def to_call_request(self) -> JsonObject:
        """Return the session part of `POST /v1/realtime/calls`, with the model."""
        return {**self.to_wire(), "model": self.model}
