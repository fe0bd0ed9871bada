"""The client events this package sends, built from typed requests (GA shapes)."""

from __future__ import annotations

from .responses import ResponseRequest
from .session_config import JsonObject, SessionConfig


def session_update(config: SessionConfig) -> JsonObject:
    """Build `session.update` with the whole configuration."""
    return {"type": "session.update", "session": config.to_wire()}


def response_create(request: ResponseRequest) -> JsonObject:
    """Build `response.create`; instructions, a tool ban and an output limit apply to it only."""
    response: JsonObject = {}
    if request.instructions is not None:
        response["instructions"] = request.instructions
    if not request.tools_allowed:
        response["tool_choice"] = "none"
    if request.max_output_tokens is not None:
        response["max_output_tokens"] = request.max_output_tokens
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
