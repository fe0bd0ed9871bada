"""Typed Realtime events (GA shapes): builders of client events, parsers of server events.

Everything above this module sees these types, never a raw `type` string. Unknown server event
types and extra fields are tolerated: the API grows, and an old client must keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

type JsonObject = dict[str, Any]
type Voice = str
type TurnDetectionType = Literal["server_vad", "semantic_vad"]
type Eagerness = Literal["low", "medium", "high", "auto"]

VOICES: Final = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse"
)  # fmt: skip


# --- Session configuration ---------------------------------------------------------------


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
    tools: tuple[JsonObject, ...] = ()
    tool_choice: str = "auto"
    max_output_tokens: int | Literal["inf"] = "inf"

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
        return {
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
            "tools": list(self.tools),
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
        }

    def to_call_request(self) -> JsonObject:
        """Return the session part of `POST /v1/realtime/calls`, with the model."""
        return {**self.to_wire(), "model": self.model}


# --- Client events -------------------------------------------------------------------------


def session_update(config: SessionConfig) -> JsonObject:
    """Build `session.update` with the whole configuration."""
    return {"type": "session.update", "session": config.to_wire()}


def response_create(instructions: str | None = None, *, tools_allowed: bool = True) -> JsonObject:
    """Build `response.create`; instructions and a tool ban apply to this response only."""
    response: JsonObject = {}
    if instructions is not None:
        response["instructions"] = instructions
    if not tools_allowed:
        response["tool_choice"] = "none"
    if not response:
        return {"type": "response.create"}
    return {"type": "response.create", "response": response}


def response_cancel() -> JsonObject:
    """Build `response.cancel` for the active response."""
    return {"type": "response.cancel"}


def output_audio_buffer_clear() -> JsonObject:
    """Build `output_audio_buffer.clear`: stop the audio being streamed (WebRTC only)."""
    return {"type": "output_audio_buffer.clear"}


def user_text(text: str) -> JsonObject:
    """Build `conversation.item.create` with a user text message."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def function_call_output(call_id: str, output: str) -> JsonObject:
    """Build `conversation.item.create` with the result of a function call."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


# --- Server events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """Base of every server event."""

    event_id: str


@dataclass(frozen=True, slots=True)
class SessionCreated(ServerEvent):
    """The session exists; first event on the channel."""

    session: JsonObject


@dataclass(frozen=True, slots=True)
class SessionUpdated(ServerEvent):
    """A `session.update` was applied; `session` is the whole effective configuration."""

    session: JsonObject


@dataclass(frozen=True, slots=True)
class ErrorEvent(ServerEvent):
    """The server reports an error; most leave the session open."""

    message: str
    code: str | None
    error_type: str | None
    param: str | None
    client_event_id: str | None
    """The `event_id` of the client event that caused it, when the server names one."""
    client_event_type: str | None = None
    """Filled in by the connection from its record of what it sent."""


@dataclass(frozen=True, slots=True)
class SpeechStarted(ServerEvent):
    """The server's VAD heard the user start speaking."""

    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped(ServerEvent):
    """The server's VAD heard the user stop speaking."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class InputAudioCommitted(ServerEvent):
    """The user's audio turn was committed as a conversation item (the user said something)."""

    item_id: str


@dataclass(frozen=True, slots=True)
class InputTranscriptDelta(ServerEvent):
    """Part of the transcript of what the user said."""

    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class InputTranscriptCompleted(ServerEvent):
    """The transcript of one user utterance; may arrive after the response to it."""

    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class InputTranscriptFailed(ServerEvent):
    """The user's speech could not be transcribed."""

    item_id: str
    message: str


@dataclass(frozen=True, slots=True)
class ResponseCreated(ServerEvent):
    """The model started a response."""

    response_id: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens used by one response, as billed."""

    input_text: int = 0
    input_audio: int = 0
    input_cached_text: int = 0
    input_cached_audio: int = 0
    output_text: int = 0
    output_audio: int = 0

    @property
    def total(self) -> int:
        """Return every token, input and output."""
        return self.input_text + self.input_audio + self.output_text + self.output_audio

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            *(getattr(self, name) + getattr(other, name) for name in self.__dataclass_fields__)
        )


@dataclass(frozen=True, slots=True)
class ResponseDone(ServerEvent):
    """A response ended: completed, cancelled, incomplete or failed."""

    response_id: str
    status: str
    reason: str | None
    usage: Usage


@dataclass(frozen=True, slots=True)
class AssistantTranscriptDelta(ServerEvent):
    """Part of the transcript of what the assistant says (runs ahead of the audio)."""

    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class AssistantTranscriptDone(ServerEvent):
    """The whole transcript of one assistant utterance."""

    response_id: str
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class OutputAudioStarted(ServerEvent):
    """The server started streaming the assistant's audio on the track."""

    response_id: str


@dataclass(frozen=True, slots=True)
class OutputAudioStopped(ServerEvent):
    """The server's audio buffer drained: everything was sent."""

    response_id: str


@dataclass(frozen=True, slots=True)
class OutputAudioCleared(ServerEvent):
    """The server dropped the rest of the audio (barge-in or a client clear)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class FunctionCall(ServerEvent):
    """The model calls a function; `arguments` is a JSON text, unchecked."""

    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class OtherEvent(ServerEvent):
    """A server event this client does not act on."""

    type: str
    data: JsonObject


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) else 0


def _obj(data: Mapping[str, Any], key: str) -> JsonObject:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def parse_usage(usage: Mapping[str, Any]) -> Usage:
    """Parse the `usage` of a response; absent parts count as zero."""
    details_in = _obj(usage, "input_token_details")
    cached = _obj(details_in, "cached_tokens_details")
    details_out = _obj(usage, "output_token_details")
    cached_text, cached_audio = _int(cached, "text_tokens"), _int(cached, "audio_tokens")
    return Usage(
        input_text=_int(details_in, "text_tokens") - cached_text,
        input_audio=_int(details_in, "audio_tokens") - cached_audio,
        input_cached_text=cached_text,
        input_cached_audio=cached_audio,
        output_text=_int(details_out, "text_tokens"),
        output_audio=_int(details_out, "audio_tokens"),
    )


def _error(e: JsonObject) -> ErrorEvent:
    error = _obj(e, "error")
    return ErrorEvent(
        event_id=_str(e, "event_id"),
        message=_str(error, "message") or "unknown error",
        code=error.get("code"),
        error_type=error.get("type"),
        param=error.get("param"),
        client_event_id=error.get("event_id"),
    )


def _response_done(e: JsonObject) -> ResponseDone:
    response = _obj(e, "response")
    details = _obj(response, "status_details")
    return ResponseDone(
        event_id=_str(e, "event_id"),
        response_id=_str(response, "id"),
        status=_str(response, "status"),
        reason=details.get("reason"),
        usage=parse_usage(_obj(response, "usage")),
    )


_PARSERS: Final[dict[str, Callable[[JsonObject], ServerEvent]]] = {
    "error": _error,
    "response.done": _response_done,
    "session.created": lambda e: SessionCreated(_str(e, "event_id"), _obj(e, "session")),
    "session.updated": lambda e: SessionUpdated(_str(e, "event_id"), _obj(e, "session")),
    "input_audio_buffer.speech_started": lambda e: SpeechStarted(
        _str(e, "event_id"), _str(e, "item_id"), _int(e, "audio_start_ms")
    ),
    "input_audio_buffer.speech_stopped": lambda e: SpeechStopped(
        _str(e, "event_id"), _str(e, "item_id"), _int(e, "audio_end_ms")
    ),
    "input_audio_buffer.committed": lambda e: InputAudioCommitted(
        _str(e, "event_id"), _str(e, "item_id")
    ),
    "conversation.item.input_audio_transcription.delta": lambda e: InputTranscriptDelta(
        _str(e, "event_id"), _str(e, "item_id"), _str(e, "delta")
    ),
    "conversation.item.input_audio_transcription.completed": lambda e: InputTranscriptCompleted(
        _str(e, "event_id"), _str(e, "item_id"), _str(e, "transcript")
    ),
    "conversation.item.input_audio_transcription.failed": lambda e: InputTranscriptFailed(
        _str(e, "event_id"), _str(e, "item_id"), _str(_obj(e, "error"), "message")
    ),
    "response.created": lambda e: ResponseCreated(
        _str(e, "event_id"), _str(_obj(e, "response"), "id")
    ),
    "response.output_audio_transcript.delta": lambda e: AssistantTranscriptDelta(
        _str(e, "event_id"), _str(e, "response_id"), _str(e, "item_id"), _str(e, "delta")
    ),
    "response.output_audio_transcript.done": lambda e: AssistantTranscriptDone(
        _str(e, "event_id"), _str(e, "response_id"), _str(e, "item_id"), _str(e, "transcript")
    ),
    "output_audio_buffer.started": lambda e: OutputAudioStarted(
        _str(e, "event_id"), _str(e, "response_id")
    ),
    "output_audio_buffer.stopped": lambda e: OutputAudioStopped(
        _str(e, "event_id"), _str(e, "response_id")
    ),
    "output_audio_buffer.cleared": lambda e: OutputAudioCleared(
        _str(e, "event_id"), _str(e, "response_id")
    ),
    "response.function_call_arguments.done": lambda e: FunctionCall(
        _str(e, "event_id"),
        _str(e, "response_id"),
        _str(e, "item_id"),
        _str(e, "call_id"),
        _str(e, "name"),
        _str(e, "arguments"),
    ),
}


def parse_server_event(data: JsonObject) -> ServerEvent:
    """Parse one decoded server event; unknown types become OtherEvent."""
    event_type = _str(data, "type")
    parser = _PARSERS.get(event_type)
    if parser is None:
        return OtherEvent(_str(data, "event_id"), event_type, data)
    return parser(data)
