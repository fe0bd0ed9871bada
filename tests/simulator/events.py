"""Realtime events on the simulator's data channel: ids, builders, and validation against the SDK.

Every event the simulator sends passes `validate_server_event` (a failure is a simulator bug), and
every client event goes through `check_client_event`, which answers the way OpenAI's GA server
does: unknown types, missing fields and unknown parameters (beta-shaped fields included) are
errors. The `openai` package's unions are rebuilt as real discriminated unions (protocol doc §8).
"""

from __future__ import annotations

from dataclasses import dataclass
import re
import secrets
import string
import typing
from typing import Annotated, Any, Final

from openai.types import Model
from openai.types.realtime import (
    RealtimeClientEvent,
    RealtimeServerEvent,
    RealtimeSessionCreateRequest,
)
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

type JsonObject = dict[str, Any]

_BASE62: Final = string.ascii_letters + string.digits


def _discriminated(union: object) -> TypeAdapter[Any]:
    """Rebuild an SDK `Annotated[Union[...], PropertyInfo]` as a pydantic discriminated union."""
    members = typing.get_args(typing.get_args(union)[0])
    return TypeAdapter(Annotated[typing.Union[members], Field(discriminator="type")])  # noqa: UP007


SERVER_EVENTS: Final = _discriminated(RealtimeServerEvent)
CLIENT_EVENTS: Final = _discriminated(RealtimeClientEvent)
_SESSION: Final = TypeAdapter(RealtimeSessionCreateRequest)
MODEL: Final = TypeAdapter(Model)
"""An entry of `GET /v1/models` (with `shutdown_date`)."""


def new_id(prefix: str, length: int = 21) -> str:
    """Return an OpenAI-shaped id: the prefix, an underscore, random base62 characters."""
    return f"{prefix}_{''.join(secrets.choice(_BASE62) for _ in range(length))}"


def new_hex_id(prefix: str) -> str:
    """Return an id of the prefix and 32 hex digits (`rtc_u1_…`, `ek_…`)."""
    return f"{prefix}_{secrets.token_hex(16)}"


class InvalidServerEventError(AssertionError):
    """The simulator built an event that the official types reject: a bug in the simulator."""


def validate_server_event(event: JsonObject) -> None:
    """Raise InvalidServerEventError unless the event is a valid GA server event."""
    try:
        SERVER_EVENTS.validate_python(event)
    except ValidationError as err:
        raise InvalidServerEventError(f"{event.get('type')!r}: {err}") from err


@dataclass(frozen=True, slots=True)
class ClientEventProblem:
    """Why a client event was refused, shaped like the `error` object OpenAI answers with."""

    code: str
    message: str
    param: str | None = None


def check_client_event(event: object) -> ClientEventProblem | None:
    """Return what OpenAI would object to in a client event, or None when it is valid."""
    if not isinstance(event, dict):
        return ClientEventProblem("invalid_event", "The event must be a JSON object.")
    if "type" not in event:
        return ClientEventProblem("invalid_event", "The 'type' field is missing.")
    try:
        model = CLIENT_EVENTS.validate_python(event)
    except ValidationError as err:
        return _problem(err)
    return _unknown_parameter(model, "")


def check_session(session: object, prefix: str = "session") -> ClientEventProblem | None:
    """Return what OpenAI would object to in a GA realtime session config, or None."""
    if not isinstance(session, dict):
        return ClientEventProblem("invalid_type", f"Invalid type for '{prefix}'.", prefix)
    try:
        model = _SESSION.validate_python(session)
    except ValidationError as err:
        return _problem(err, prefix)
    return _unknown_parameter(model, prefix)


_GENERATION_2: Final = re.compile(r"^gpt-realtime-([2-9]|\d{2})(\.\d+)?(-|$)")


def generation_2_or_later(model: str) -> bool:
    """Return whether a model is gpt-realtime-2 or later: 128k context, reasoning."""
    return _GENERATION_2.match(model) is not None


def check_model_support(session: JsonObject) -> ClientEventProblem | None:
    """Refuse `reasoning` for a model without it.

    "Only supported by reasoning Realtime models such as gpt-realtime-2", the SDK says; the
    wording of the error is OpenAI's for unsupported parameters.
    """
    model = str(session.get("model") or DEFAULT_MODEL)
    if session.get("reasoning") and not generation_2_or_later(model):
        return ClientEventProblem(
            "unsupported_parameter",
            f"Unsupported parameter: 'reasoning.effort' is not supported with the model {model}.",
            "session.reasoning",
        )
    return None


def _problem(err: ValidationError, prefix: str = "") -> ClientEventProblem:
    """Turn the first pydantic error into OpenAI's wording."""
    first = err.errors()[0]
    if first["type"] == "union_tag_invalid":
        return ClientEventProblem(
            "invalid_value", f"Invalid value: {first['input']!r}. Unknown event type.", "type"
        )
    # A discriminated union puts the tag first in the location; union members add their class
    # names (fields are snake_case, list indexes numbers).
    location = [str(part) for part in first["loc"]]
    if not prefix and location:
        location = location[1:]
    location = [part for part in location if not part[:1].isupper() and "[" not in part]
    param = ".".join([prefix, *location] if prefix else location) or None
    if first["type"] == "missing":
        return ClientEventProblem(
            "missing_required_parameter", f"Missing required parameter: '{param}'.", param
        )
    return ClientEventProblem(
        "invalid_value", f"Invalid value for '{param}': {first['msg']}", param
    )


def _unknown_parameter(value: object, path: str) -> ClientEventProblem | None:
    """Find the first field the SDK models do not know (they keep unknown fields as extras)."""
    if isinstance(value, BaseModel):
        for name in value.model_extra or {}:
            param = f"{path}.{name}" if path else name
            return ClientEventProblem("unknown_parameter", f"Unknown parameter: '{param}'.", param)
        children: list[tuple[str, object]] = [
            (name, getattr(value, name)) for name in type(value).model_fields
        ]
    elif isinstance(value, list):
        children = [(f"[{index}]", item) for index, item in enumerate(value)]
    else:
        return None
    for name, child in children:
        joined = f"{path}{name}" if name.startswith("[") else f"{path}.{name}" if path else name
        if problem := _unknown_parameter(child, joined):
            return problem
    return None


# --- Builders for the objects inside events --------------------------------------------------

DEFAULT_MODEL: Final = "gpt-realtime"
DEFAULT_INSTRUCTIONS: Final = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a "
    "human, but remember that you aren't a human and that you can't do human things in the "
    "real world."
)


def default_session(session_id: str, expires_at: int) -> JsonObject:
    """Return the effective config of a fresh GA session, as `session.created` shows it."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": DEFAULT_MODEL,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "marin",
                "speed": 1.0,
            },
        },
    }


def merge_session(current: JsonObject, update: JsonObject) -> JsonObject:
    """Apply a partial update: only the fields present change; nested objects merge."""
    merged = dict(current)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "tracing":
            merged[key] = merge_session(merged[key], value)
        else:
            merged[key] = value
    return merged


def rate_limits(remaining_tokens: int) -> list[JsonObject]:
    """Return the `rate_limits` list of a `rate_limits.updated` event."""
    return [
        {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
        {"name": "tokens", "limit": 40000, "remaining": remaining_tokens, "reset_seconds": 0.9},
    ]


def obfuscation(delta: str) -> str:
    """Return random padding as real delta events carry it (it hides the delta's length)."""
    return "".join(secrets.choice(_BASE62) for _ in range(max(0, 16 - len(delta))))


def error_body(
    code: str, message: str, *, param: str | None = None, kind: str = "invalid_request_error"
) -> JsonObject:
    """Return OpenAI's HTTP error envelope."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
