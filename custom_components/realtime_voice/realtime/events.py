"""Typed Realtime server events (GA shapes), parsed from the channel's JSON.

Everything above this package sees these types, never a raw `type` string. Unknown server event
types and extra fields are tolerated: the API grows, and an old client must keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from .session_config import JsonObject


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
class TranscriptionUsage:
    """What transcribing one user utterance used, billed at the transcription model's prices.

    Token-billed models report tokens; duration-billed ones report seconds of audio.
    """

    input_audio: int = 0
    input_text: int = 0
    output_text: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Return every token (zero for a duration-billed model)."""
        return self.input_audio + self.input_text + self.output_text

    def __add__(self, other: TranscriptionUsage) -> TranscriptionUsage:
        return TranscriptionUsage(
            *(getattr(self, part.name) + getattr(other, part.name) for part in fields(self))
        )


@dataclass(frozen=True, slots=True)
class InputTranscriptCompleted(ServerEvent):
    """The transcript of one user utterance; may arrive after the response to it."""

    item_id: str
    transcript: str
    usage: TranscriptionUsage = field(default_factory=TranscriptionUsage)


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
    """Tokens used by one response, as billed: input split into new and cached, per modality.

    OpenAI counts cached input inside the input tokens; here `input_*` are the uncached ones,
    so that each field has one price.
    """

    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    input_cached_text: int = 0
    input_cached_audio: int = 0
    input_cached_image: int = 0
    output_text: int = 0
    output_audio: int = 0

    @property
    def total(self) -> int:
        """Return every token, cached input included: OpenAI's `total_tokens`."""
        return sum(getattr(self, part.name) for part in fields(self))

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            *(getattr(self, part.name) + getattr(other, part.name) for part in fields(self))
        )


@dataclass(frozen=True, slots=True)
class ResponseDone(ServerEvent):
    """A response ended: completed, cancelled, incomplete or failed."""

    response_id: str
    status: str
    reason: str | None
    usage: Usage
    error_code: str | None = None
    """Why a failed response failed (`model_not_found`, `server_error`, ...)."""


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
    details_out = _obj(usage, "output_token_details")
    text, audio = _int(details_in, "text_tokens"), _int(details_in, "audio_tokens")
    image = _int(details_in, "image_tokens")
    cached = _obj(details_in, "cached_tokens_details")
    if cached:
        cached_text, cached_audio = _int(cached, "text_tokens"), _int(cached, "audio_tokens")
        cached_image = _int(cached, "image_tokens")
    else:  # no split (older servers): the cached prefix is text first, then audio
        cached_text = min(text, _int(details_in, "cached_tokens"))
        cached_audio = min(audio, _int(details_in, "cached_tokens") - cached_text)
        cached_image = 0
    return Usage(
        input_text=max(0, text - cached_text),
        input_audio=max(0, audio - cached_audio),
        input_image=max(0, image - cached_image),
        input_cached_text=cached_text,
        input_cached_audio=cached_audio,
        input_cached_image=cached_image,
        output_text=_int(details_out, "text_tokens"),
        output_audio=_int(details_out, "audio_tokens"),
    )


def parse_transcription_usage(usage: Mapping[str, Any]) -> TranscriptionUsage:
    """Parse the `usage` of a finished transcription: tokens, or seconds of audio."""
    if usage.get("type") == "duration":
        seconds = usage.get("seconds")
        return TranscriptionUsage(seconds=float(seconds) if isinstance(seconds, int | float) else 0)
    details = _obj(usage, "input_token_details")
    text = _int(details, "text_tokens")
    audio = _int(details, "audio_tokens") if "audio_tokens" in details else None
    return TranscriptionUsage(
        input_audio=max(0, _int(usage, "input_tokens") - text) if audio is None else audio,
        input_text=text,
        output_text=_int(usage, "output_tokens"),
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
        error_code=_str(_obj(details, "error"), "code") or None,
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
        _str(e, "event_id"),
        _str(e, "item_id"),
        _str(e, "transcript"),
        parse_transcription_usage(_obj(e, "usage")),
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
