"""How the simulated model answers: scripted replies and function calls, as OpenAI streams them.

A response emits its items as OpenAI does (`response.created`, output items and content parts,
transcript and argument deltas, `response.done` with usage); a reply's audio really goes out on
the call's track between `output_audio_buffer.started` and `.stopped`. `SimulatedCall` mixes
this in; it owns the channel, the track and the conversation these methods use.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import re
from typing import Any, Final, Literal

from .events import JsonObject, new_id, obfuscation, rate_limits
from .script import DEFAULT_REPLY, CallFunction, CallFunctions, Reply, Turn
from .usage_model import AUDIO_TOKENS_PER_OUTPUT_SECOND, text_tokens, usage_block
from .voice import RATE, Clip, Samples

GENERATION_SHARE: Final = 0.5
"""The model generates a reply in this share of its audio's duration: `response.done` comes
halfway through playback, as generation runs faster than real time."""
_ARGUMENT_CHUNK: Final = 8
_DROP_DELAY_SECONDS: Final = 0.1

type Status = Literal["completed", "cancelled", "incomplete"]


@dataclass(slots=True, eq=False)
class Response:
    """A response in progress and what has been emitted for it so far."""

    id: str
    items: list[JsonObject] = field(default_factory=list)
    """The output items (a message, or one or more function calls), in output order."""
    part_added: bool = False
    transcript: str = ""
    max_output_tokens: int | None = None
    """This response's own limit (`response.create`); the audio is cut there."""
    output_text: int = 0
    """Tokens of text generated: the transcript, or a function call's name and arguments."""
    clip: Clip | None = None
    finished: bool = False
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class ResponseGenerator:
    """The responses of one simulated call (mixed into SimulatedCall)."""

    # What SimulatedCall provides.
    _response: Response | None
    faults: Any

    def _next_turn(self, *, tools_allowed: bool = True) -> Turn:
        """Return the next scripted turn, or the friendly default.

        With `tool_choice: none` the model cannot call functions: the scripted calls are
        passed over (used up) and it says its next scripted words instead.
        """
        for turns in (self._turns, self._shared_turns):
            while turns:
                turn = turns.popleft()
                if tools_allowed or isinstance(turn, Reply):
                    return turn
        return DEFAULT_REPLY

    def _start_response(
        self, max_output_tokens: int | None = None, *, tools_allowed: bool = True
    ) -> None:
        """Create a response and run it in the background."""
        response = Response(new_id("resp"), max_output_tokens=max_output_tokens)
        self._response = response
        self._emit({"type": "response.created", "response": self._response_object(response)})
        if not self.model_available:
            self._fail_response(response)
            return
        turn = self._next_turn(tools_allowed=tools_allowed)
        if isinstance(turn, Reply):
            self._spawn(self._reply(response, turn), "spoken response")
            return
        calls = turn.calls if isinstance(turn, CallFunctions) else (turn,)
        self._spawn(self._call_functions(response, calls), "function call response")

    def _response_object(self, response: Response, status: str = "in_progress") -> JsonObject:
        """Return the `response` object of `response.created` / `response.done`."""
        output = self.session["audio"]["output"]
        return {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": list(response.items),
            "conversation_id": "conv_" + response.id.removeprefix("resp_"),
            "output_modalities": self.session["output_modalities"],
            "max_output_tokens": self.session["max_output_tokens"],
            "audio": {"output": {"format": output["format"], "voice": output["voice"]}},
            "usage": None,
            "metadata": None,
        }

    def _add_output_item(self, response: Response, item: JsonObject) -> int:
        """Announce one of the response's output items; return its output index."""
        index = len(response.items)
        response.items.append(item)
        self._items[item["id"]] = item
        previous = self._last_item_id
        self._last_item_id = item["id"]
        base = {"response_id": response.id, "output_index": index}
        self._emit({"type": "response.output_item.added", **base, "item": item})
        self._emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        return index

    async def _reply(self, response: Response, turn: Reply) -> None:
        """Speak a reply: transcript deltas while generating, audio on the track."""
        item_id = new_id("item")
        message = {"type": "message", "role": "assistant", "content": []}
        self._add_output_item(
            response, {"id": item_id, "object": "realtime.item", "status": "in_progress", **message}
        )
        ids = {
            "response_id": response.id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }
        part = {"type": "audio", "transcript": ""}
        self._emit({"type": "response.content_part.added", **ids, "part": part})
        response.part_added = True
        samples = await self._voice.say(turn.text)
        if response.finished:
            return
        response.output_text = text_tokens(turn.text)
        samples, cut = _within_limit(samples, response)
        response.clip = clip = self._track.play(samples)
        self._playing_response_id = response.id
        self._emit({"type": "output_audio_buffer.started", "response_id": response.id})
        if self.faults.drop_during_response:
            self._spawn(self._drop_soon(), "drop during response")
        deltas = _split(turn.text, self.faults.transcript_delta_flood)
        pause = (
            0.0
            if self.faults.transcript_delta_flood
            else (clip.seconds * GENERATION_SHARE / len(deltas))
        )
        for delta in deltas:
            response.transcript += delta
            self._emit(
                {
                    "type": "response.output_audio_transcript.delta",
                    **ids,
                    "delta": delta,
                    "obfuscation": obfuscation(delta),
                }
            )
            if await cancelled_within(response, pause):
                return
        if cut:
            self._finish_response(response, "incomplete", "max_output_tokens")
        else:
            self._finish_response(response, "completed")
        await clip.done.wait()
        if not clip.cleared:
            self._emit({"type": "output_audio_buffer.stopped", "response_id": response.id})

    async def _drop_soon(self) -> None:
        """Lose the peer once some reply audio went out."""
        await asyncio.sleep(_DROP_DELAY_SECONDS)
        await self.drop()

    async def _call_functions(self, response: Response, calls: tuple[CallFunction, ...]) -> None:
        """Call one or more functions, one output item each, then end the response."""
        for turn in calls:
            if not await self._call_function(response, turn):
                return
        self._finish_response(response, "completed")

    async def _call_function(self, response: Response, turn: CallFunction) -> bool:
        """Call a function: arguments streamed as deltas, no audio; False if cancelled."""
        item_id = new_id("item")
        call_id = new_id("call", 16)
        index = self._add_output_item(
            response,
            {
                "id": item_id,
                "object": "realtime.item",
                "type": "function_call",
                "status": "in_progress",
                "name": turn.name,
                "call_id": call_id,
                "arguments": "",
            },
        )
        ids = {"response_id": response.id, "item_id": item_id, "output_index": index}
        arguments = turn.arguments_json
        response.output_text = text_tokens(turn.name + arguments)
        for start in range(0, len(arguments), _ARGUMENT_CHUNK):
            delta = arguments[start : start + _ARGUMENT_CHUNK]
            self._emit(
                {
                    "type": "response.function_call_arguments.delta",
                    **ids,
                    "call_id": call_id,
                    "delta": delta,
                }
            )
            if await cancelled_within(response, 0):
                return False
        item = response.items[index]
        item["arguments"] = arguments
        item["status"] = "completed"
        self._emit(
            {
                "type": "response.function_call_arguments.done",
                **ids,
                "call_id": call_id,
                "name": turn.name,
                "arguments": arguments,
            }
        )
        self._item_done(response, index)
        return True

    def _item_done(self, response: Response, index: int) -> None:
        """Announce that one of the response's output items is complete."""
        item = response.items[index]
        base = {"response_id": response.id, "output_index": index}
        self._emit({"type": "response.output_item.done", **base, "item": item})
        self._emit({"type": "conversation.item.done", "item": item})

    def _cancel_response(
        self, response: Response, reason: Literal["turn_detected", "client_cancelled"]
    ) -> None:
        """End a response early (its task notices and stops)."""
        response.cancelled.set()
        self._finish_response(response, "cancelled", reason)

    def _finish_response(
        self,
        response: Response,
        status: Status,
        reason: Literal["turn_detected", "client_cancelled", "max_output_tokens"] | None = None,
    ) -> None:
        """Close whatever the response opened, then send `response.done`."""
        if response.finished:
            return
        response.finished = True
        for index, item in enumerate(response.items):
            if item["status"] != "in_progress":
                continue  # a function call whose arguments were done
            if item["type"] == "message":
                self._finish_audio_part(response, item)
            item["status"] = "completed" if status == "completed" else "incomplete"
            self._item_done(response, index)
        done = self._response_object(response, status)
        if reason is not None:
            done["status_details"] = {"type": "cancelled", "reason": reason}
        done["usage"] = self._usage(response)
        self._emit({"type": "response.done", "response": done})
        self._emit({"type": "rate_limits.updated", "rate_limits": rate_limits(39000)})
        self._response = None

    def _finish_audio_part(self, response: Response, item: JsonObject) -> None:
        """Close the audio content part with the transcript generated so far."""
        if not response.part_added:
            return
        ids = {"response_id": response.id, "item_id": item["id"], "output_index": 0}
        ids["content_index"] = 0
        transcript = response.transcript
        self._emit({"type": "response.output_audio.done", **ids})
        self._emit(
            {"type": "response.output_audio_transcript.done", **ids, "transcript": transcript}
        )
        part = {"type": "audio", "transcript": transcript}
        self._emit({"type": "response.content_part.done", **ids, "part": part})
        item["content"] = [{"type": "output_audio", "transcript": transcript}]

    def _usage(self, response: Response) -> JsonObject:
        """Return what the response is billed: the context it read, what it produced."""
        seconds = response.clip.seconds if response.clip else 0.0
        return self.context.answer(
            output_text=response.output_text,
            output_audio=round(seconds * AUDIO_TOKENS_PER_OUTPUT_SECOND),
        )

    def _fail_response(self, response: Response) -> None:
        """Fail a response as OpenAI does for a model the account cannot use."""
        model = self.session.get("model")
        done = self._response_object(response, "failed")
        done["status_details"] = {
            "type": "failed",
            "error": {
                "type": "invalid_request_error",
                "code": "model_not_found",
                "message": f"The model `{model}` does not exist or you do not have access to it.",
            },
        }
        done["usage"] = usage_block(
            text=0, audio=0, cached_text=0, cached_audio=0, output_text=0, output_audio=0
        )
        response.finished = True
        self._response = None
        self._emit({"type": "response.done", "response": done})


async def cancelled_within(response: Response, seconds: float) -> bool:
    """Wait up to seconds; return whether the response was cancelled meanwhile."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return response.cancelled.is_set()
    try:
        async with asyncio.timeout(seconds):
            await response.cancelled.wait()
    except TimeoutError:
        return False
    return True


def _split(text: str, pieces: int) -> list[str]:
    """Split a transcript into word deltas, or into exactly `pieces` deltas for a flood."""
    if pieces <= 0:
        return re.findall(r"\S+\s*", text) or [text]
    size = max(1, -(-len(text) // pieces))
    chunks = [text[start : start + size] for start in range(0, len(text), size)]
    return chunks + [""] * (pieces - len(chunks))


def _within_limit(samples: Samples, response: Response) -> tuple[Samples, bool]:
    """Cut a reply's audio where its `max_output_tokens` ends; return it and whether it was cut."""
    if response.max_output_tokens is None:
        return samples, False
    tokens = max(0, response.max_output_tokens - response.output_text)
    keep = int(tokens / AUDIO_TOKENS_PER_OUTPUT_SECOND * RATE)
    return (samples[:keep], True) if samples.size > keep else (samples, False)
