"""One simulated Realtime call: the answering aiortc peer and the GA session behind it.

The peer answers the client's offer with Opus both ways, the `oai-events` data channel and host
candidates only. The session behaves like OpenAI's: `session.created` when the channel opens,
`session.update` merged and acknowledged, server VAD on the received audio, scripted responses
whose audio really goes out on the track between `output_audio_buffer.started` and `.stopped`,
barge-in, function calls, and the switched-on faults. Everything is recorded with monotonic
timestamps so that tests can assert what the client did.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
import json
import logging
import secrets
import time
from typing import Any, Final

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from .events import (
    ClientEventProblem,
    JsonObject,
    check_client_event,
    check_model_support,
    merge_session,
    new_id,
    validate_server_event,
)
from .faults import BAD_ANSWERS, Faults, go_quiet, ignore_channel_opens, unreachable
from .responses import Response, ResponseGenerator
from .script import (
    DEFAULT_USER_TRANSCRIPT,
    Turn,
)
from .usage_model import (
    ConversationContext,
    transcription_usage,
)
from .vad import Edge, EnergyVad, VadEvent, rms_threshold
from .voice import PlaybackTrack, Voice, rms

_LOGGER = logging.getLogger(__name__)

_MIN_COMMIT_MS: Final = 100
_SETTLE_SECONDS: Final = 5.0
_SEMANTIC_SILENCE_MS: Final = {"low": 1000, "medium": 500, "auto": 500, "high": 250}

type Timestamped[T] = tuple[float, T]


@dataclass(frozen=True, slots=True)
class InvalidClientEvent:
    """A client event OpenAI would have refused."""

    time: float
    """Monotonic time of arrival."""
    raw: str
    problem: ClientEventProblem


class SimulatedCall(ResponseGenerator):
    """One peer and session of the simulator; tests inspect and drive it."""

    def __init__(
        self,
        *,
        session: JsonObject,
        faults: Faults,
        voice: Voice,
        shared_turns: deque[Turn],
        user_transcript: str = DEFAULT_USER_TRANSCRIPT,
        model_available: bool = True,
    ) -> None:
        self.call_id = f"rtc_u1_{secrets.token_hex(16)}"
        self.session = session
        """The effective session config, as `session.updated` reports it."""
        self.model_available = model_available
        """False: the account cannot use the session's model; every response fails as OpenAI's
        do then (`model_not_found`, openai/openai-realtime-console#561)."""
        self.context = ConversationContext(session)
        """The conversation's tokens: what each response is billed."""
        self.faults = replace(faults)
        """This call's own copy of the fault switches, taken when the call was created."""
        self.user_transcript = user_transcript
        self.client_events: list[Timestamped[JsonObject]] = []
        self.invalid_client_events: list[InvalidClientEvent] = []
        self.server_events: list[Timestamped[JsonObject]] = []
        self.audio_frames: list[Timestamped[float]] = []
        """(monotonic time, RMS) of every 20 ms frame received from the client's track."""
        self.closed = asyncio.Event()
        self.hung_up = False
        """Whether the call ended through `POST /v1/realtime/calls/{id}/hangup`."""
        self.frozen = False
        """Whether `freeze()` made the peer go silent."""
        self.created_at = time.monotonic()
        self.closed_at: float | None = None
        """When the peer closed (monotonic), once it has."""
        self._voice = voice
        self._turns: deque[Turn] = deque()
        self._shared_turns = shared_turns
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._track = PlaybackTrack(silent_between_clips=self.faults.silent_between_replies)
        self._channel: RTCDataChannel | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._peer_tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self._closing = False
        self._vad = EnergyVad()
        self._speech_item_id: str | None = None
        self._buffered_ms = 0.0
        self._items: dict[str, JsonObject] = {}
        self._last_item_id: str | None = None
        self._response: Response | None = None
        self._playing_response_id = ""

    # --- What tests use ------------------------------------------------------------------

    def script(self, *turns: Turn) -> None:
        """Queue turns for this call; they go before the simulator-wide ones."""
        self._turns.extend(turns)

    async def send(self, event: JsonObject) -> None:
        """Send a server event (validated; an `event_id` is added when missing)."""
        self._emit(event)

    async def send_raw(self, text: str) -> None:
        """Send anything on the data channel, unvalidated (for faults)."""
        if self._channel_open():
            self._channel.send(text)

    async def wait_for_client_event(
        self,
        event_type: str,
        *,
        index: int = 0,
        timeout: float = 5.0,
    ) -> JsonObject:
        """Return the index-th client event of this type, waiting for it if needed."""
        return await self._wait(lambda: _nth(self.client_events, event_type, index), timeout)

    async def wait_for_server_event(
        self,
        event_type: str,
        *,
        index: int = 0,
        timeout: float = 5.0,
    ) -> JsonObject:
        """Return the index-th event of this type the simulator sent, waiting for it if needed."""
        return await self._wait(lambda: _nth(self.server_events, event_type, index), timeout)

    async def wait_for_speech(
        self,
        timeout: float = 5.0,
    ) -> Timestamped[float]:
        """Return (time, RMS) of the first received frame above the session's VAD threshold."""

        def first_loud() -> Timestamped[float] | None:
            floor = rms_threshold(self._vad_threshold())
            return next((frame for frame in self.audio_frames if frame[1] > floor), None)

        return await self._wait(first_loud, timeout)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until the peer has closed."""
        async with asyncio.timeout(timeout):
            await self.closed.wait()

    def freeze(self) -> None:
        """Vanish without a goodbye, like a peer lost on the network: nothing goes out.

        No RTP, no RTCP, no SCTP, no events: every packet the peer would send is dropped where
        it would leave (its ICE connection). The transports stay up (no DTLS close, no SCTP
        abort), so only a client's own liveness check can notice; client events are still
        recorded but not answered.
        """
        self.frozen = True
        self._track.freeze()
        for transceiver in self._pc.getTransceivers():
            go_quiet(transceiver.receiver.transport.transport)
        if self._pc.sctp is not None:
            go_quiet(self._pc.sctp.transport.transport)

    async def close_dtls(self) -> None:
        """Close DTLS at once and nothing else yet, as a peer built on pion does on hang-up.

        No SCTP ABORT, no RTCP BYE: the client learns of the end only from DTLS's close_notify,
        while its SCTP association is still established. Nothing more goes out; close() does
        the rest.
        """
        self.frozen = True  # no more events, no more RTP; the close_notify must go out
        self._track.freeze()
        transports = [transceiver.receiver.transport for transceiver in self._pc.getTransceivers()]
        if self._pc.sctp is not None:
            transports.append(self._pc.sctp.transport)
        for transport in {id(transport): transport for transport in transports}.values():
            await transport.stop()

    async def drop(self) -> None:
        """Lose the peer abruptly: stop everything and close without a goodbye event."""
        await self.close()

    async def close(self) -> None:
        """Close the peer and stop every task of this call."""
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._track.stop()
        await self._pc.close()
        await settle(self._peer_tasks)
        self.closed_at = time.monotonic()
        self.closed.set()
        self._notify()

    # --- Signalling ----------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Apply the client's offer and return the SDP answer (raises ValueError if invalid)."""
        self._pc.on("datachannel", self._on_datachannel)
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)
        before = asyncio.all_tasks()
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        self._pc.addTrack(self._track)
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        # aiortc connects in a task it keeps no handle of; close() waits for it to end.
        self._peer_tasks = asyncio.all_tasks() - before
        if self.faults.unopened_data_channel and self._pc.sctp is not None:
            ignore_channel_opens(self._pc.sctp)
        sdp: str = self._pc.localDescription.sdp
        if self.faults.bad_answer is not None:
            return BAD_ANSWERS[self.faults.bad_answer](sdp)
        return unreachable(sdp) if self.faults.unreachable_answer else sdp

    def _on_connection_state(self) -> None:
        """Close when ICE/DTLS fail or the client went away."""
        if self._pc.connectionState in {"failed", "closed"} and not self._closing:
            self._spawn(self.close(), "close after peer loss")

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        """Start the session when the client's `oai-events` channel opens."""
        self._channel = channel
        channel.on("message", self._on_message)
        if self.faults.silent_data_channel:
            return
        self._emit({"type": "session.created", "session": self.session})
        if self.faults.junk_events:
            channel.send('{"type": "session.updated", "session": ')
            channel.send(json.dumps({"type": "response.telepathy.delta", "event_id": "x"}))
        if self.faults.max_session_seconds is not None:
            self._spawn(self._expire(self.faults.max_session_seconds), "session expiry")

    async def _expire(self, seconds: float) -> None:
        """End the session like OpenAI's duration cap does."""
        await asyncio.sleep(seconds)
        minutes = round(seconds / 60)
        self._error(
            "session_expired", f"Your session hit the maximum duration of {minutes} minutes."
        )
        await self.close()

    # --- Sending -------------------------------------------------------------------------

    def _emit(self, event: JsonObject) -> None:
        """Validate, record and send one server event."""
        event = {"event_id": new_id("event"), **event}
        validate_server_event(event)
        if not self._channel_open():
            return
        self.server_events.append((time.monotonic(), event))
        text = json.dumps(event)
        self._channel.send(text)
        if self.faults.duplicate_events:
            self._channel.send(text)
        self._notify()

    def _channel_open(self) -> bool:
        """Return whether events can go out (open channel, not frozen)."""
        channel = self._channel
        return channel is not None and channel.readyState == "open" and not self.frozen

    def _error(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        """Send an `error` event."""
        error = {"type": kind, "code": code, "message": message, "param": param}
        self._emit({"type": "error", "error": {**error, "event_id": event_id}})

    # --- Client events -------------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        """Record, validate and handle one client event."""
        now = time.monotonic()
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            event = None
            problem: ClientEventProblem | None = ClientEventProblem(
                "invalid_json", "The event is not valid JSON."
            )
        else:
            problem = check_client_event(event)
        if isinstance(event, dict):
            self.client_events.append((now, event))
        self._notify()
        if self.faults.silent_data_channel or self.frozen:
            return
        event_id = event.get("event_id") if isinstance(event, dict) else None
        if problem is not None:
            self.invalid_client_events.append(InvalidClientEvent(now, text, problem))
            self._error(problem.code, problem.message, param=problem.param, event_id=event_id)
            return
        assert isinstance(event, dict)
        if event["type"] in self.faults.refused_client_events:
            self._error(
                "server_error",
                f"The server had an error while processing your {event['type']}.",
                event_id=event_id,
                kind="server_error",
            )
            return
        handler = self._handlers().get(event["type"])
        if handler is not None:
            handler(event)

    def _handlers(self) -> dict[str, Callable[[JsonObject], None]]:
        """Return the handler of each client event type (the rest are only recorded)."""
        return {
            "session.update": self._on_session_update,
            "input_audio_buffer.commit": self._on_input_commit,
            "input_audio_buffer.clear": self._on_input_clear,
            "output_audio_buffer.clear": self._on_output_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.delete": self._on_item_delete,
            "conversation.item.truncate": self._on_item_truncate,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }

    def _on_session_update(self, event: JsonObject) -> None:
        """Merge a (partial) update and answer with the full effective config."""
        merged = merge_session(self.session, event["session"])
        if problem := check_model_support(merged):
            self._error(
                problem.code, problem.message, param=problem.param, event_id=event.get("event_id")
            )
            return
        self.session = self.context.session = merged
        self._emit({"type": "session.updated", "session": self.session})

    def _on_input_commit(self, event: JsonObject) -> None:
        """Commit the input buffer by hand (push to talk)."""
        if self._buffered_ms < _MIN_COMMIT_MS:
            self._error(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{_MIN_COMMIT_MS}ms of audio, but buffer only has {self._buffered_ms:.2f}ms "
                "of audio.",
                event_id=event.get("event_id"),
            )
            return
        self._commit_user_audio(self._speech_item_id or new_id("item"))

    def _on_input_clear(self, _event: JsonObject) -> None:
        """Drop the uncommitted input audio."""
        self._buffered_ms = 0.0
        self._speech_item_id = None
        self._vad.reset()
        self._emit({"type": "input_audio_buffer.cleared"})

    def _on_output_clear(self, _event: JsonObject) -> None:
        """Cut the audio that is playing."""
        self._clear_output()

    def _on_item_create(self, event: JsonObject) -> None:
        """Add a client item (user text, function_call_output …) to the conversation."""
        item = {
            "id": new_id("item"),
            "object": "realtime.item",
            "status": "completed",
            **event["item"],
        }
        previous = event.get("previous_item_id", self._last_item_id)
        self._items[item["id"]] = item
        self._last_item_id = item["id"]
        self._emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self._emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        self.context.add_text(_item_text(item))

    def _on_item_retrieve(self, event: JsonObject) -> None:
        """Return an item."""
        if (item := self._known_item(event)) is not None:
            self._emit({"type": "conversation.item.retrieved", "item": item})

    def _on_item_delete(self, event: JsonObject) -> None:
        """Remove an item."""
        if self._known_item(event) is not None:
            del self._items[event["item_id"]]
            self._emit({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    def _on_item_truncate(self, event: JsonObject) -> None:
        """Acknowledge a truncation (it does not stop WebRTC playout, as with OpenAI)."""
        if self._known_item(event) is not None:
            fields = {key: event[key] for key in ("item_id", "content_index", "audio_end_ms")}
            self._emit({"type": "conversation.item.truncated", **fields})

    def _known_item(self, event: JsonObject) -> JsonObject | None:
        """Return the item an event names, or send an error."""
        item = self._items.get(event["item_id"])
        if item is None:
            self._error(
                "item_not_found",
                f"Item with item_id not found: {event['item_id']}",
                param="item_id",
                event_id=event.get("event_id"),
            )
        return item

    def _on_response_create(self, event: JsonObject) -> None:
        """Start a response unless one is active."""
        if self._response is not None:
            self._error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
                event_id=event.get("event_id"),
            )
            return
        response = event.get("response") or {}
        self._start_response(
            response.get("max_output_tokens"),
            tools_allowed=(response.get("tool_choice") or self.session["tool_choice"]) != "none",
        )

    def _on_response_cancel(self, event: JsonObject) -> None:
        """Cancel the active response; its audio keeps playing until cleared."""
        if self._response is None:
            self._error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                event_id=event.get("event_id"),
            )
            return
        self._cancel_response(self._response, "client_cancelled")

    # --- Audio in: VAD and user turns --------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        """Listen to the client's microphone track."""
        if track.kind == "audio":
            self._spawn(self._consume(track), "receive client audio")

    async def _consume(self, track: MediaStreamTrack) -> None:
        """Record each received frame's energy and run VAD on it."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            energy = rms(frame.to_ndarray())
            self.audio_frames.append((time.monotonic(), energy))
            self._notify()
            self._on_audio(energy, 1000 * frame.samples / frame.sample_rate)

    def _vad_threshold(self) -> float:
        """Return the session's VAD threshold (semantic VAD has none: use the default)."""
        detection = self.session["audio"]["input"].get("turn_detection") or {}
        return float(detection.get("threshold") or 0.5)

    def _on_audio(self, energy: float, frame_ms: float) -> None:
        """Feed one frame to the input buffer and, when enabled, to server VAD."""
        self._buffered_ms += frame_ms
        detection = self.session["audio"]["input"].get("turn_detection")
        if detection is None or not self._channel_open() or self.faults.silent_data_channel:
            return
        if detection["type"] == "semantic_vad":
            silence_ms = _SEMANTIC_SILENCE_MS[detection.get("eagerness") or "auto"]
        else:
            silence_ms = int(detection.get("silence_duration_ms") or 500)
        change = self._vad.feed(
            energy, frame_ms, threshold=self._vad_threshold(), silence_duration_ms=silence_ms
        )
        if change is not None:
            self._on_vad(change, detection)

    def _on_vad(self, change: VadEvent, detection: JsonObject) -> None:
        """Turn a VAD edge into the GA event sequence."""
        if change.edge is Edge.STARTED:
            self._speech_item_id = new_id("item")
            self._emit(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": change.audio_ms,
                    "item_id": self._speech_item_id,
                }
            )
            if detection.get("interrupt_response", True):
                self._barge_in()
            return
        item_id = self._speech_item_id or new_id("item")
        self._emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": change.audio_ms,
                "item_id": item_id,
            }
        )
        self._commit_user_audio(item_id)
        if detection.get("create_response", True) and self._response is None:
            self._start_response()

    def _barge_in(self) -> None:
        """Cancel the response and cut its audio: the user spoke over the model."""
        if self._response is not None:
            self._cancel_response(self._response, "turn_detected")
        if self._track.playing:
            self._clear_output()

    def _clear_output(self) -> None:
        """Drop the queued reply audio and say so."""
        self._track.clear()
        self._emit(
            {"type": "output_audio_buffer.cleared", "response_id": self._playing_response_id}
        )

    def _commit_user_audio(self, item_id: str) -> None:
        """Commit the buffered audio as a user item, transcribed when configured."""
        seconds = self._buffered_ms / 1000
        self._buffered_ms = 0.0
        self.context.add_user_audio(seconds)
        self._speech_item_id = None
        previous = self._last_item_id
        self._last_item_id = item_id
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._items[item_id] = item
        self._emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        self._emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self._emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        if self.session["audio"]["input"].get("transcription"):
            self._transcribe(item_id, seconds)

    def _transcribe(self, item_id: str, seconds: float) -> None:
        """Send the (fixed) transcript of a user audio item."""
        model = str(self.session["audio"]["input"]["transcription"].get("model") or "")
        self._emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": self.user_transcript,
                "usage": transcription_usage(model, seconds, self.user_transcript),
            }
        )

    # --- Plumbing --------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run a coroutine as a task owned by this call (cancelled on close)."""
        if self._closing:
            coroutine.close()
            return
        task = asyncio.create_task(coroutine, name=f"simulator {self.call_id}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Forget a finished task and log its failure: a simulator bug must show."""
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("Simulator task %s failed", task.get_name(), exc_info=error)

    def _notify(self) -> None:
        """Wake every waiter: something was recorded."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait[T](self, probe: Callable[[], T | None], seconds: float) -> T:
        """Wait until probe returns something."""
        async with asyncio.timeout(seconds):
            while True:
                changed = self._changed
                if (result := probe()) is not None:
                    return result
                await changed.wait()


async def settle(tasks: set[asyncio.Task[Any]]) -> None:
    """Wait for aiortc's own tasks to end after a close (they fail once ICE is stopped)."""
    if tasks:
        await asyncio.wait(tasks, timeout=_SETTLE_SECONDS)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: aiortc's ConnectionError after a close is expected


def _nth(events: list[Timestamped[JsonObject]], event_type: str, index: int) -> JsonObject | None:
    """Return the index-th event of a type, if there are that many."""
    matching = [event for _, event in events if event.get("type") == event_type]
    return matching[index] if len(matching) > index else None


def _item_text(item: JsonObject) -> str:
    """Return the text a client item adds to the conversation (a message, a function output)."""
    if item.get("type") == "function_call_output":
        return str(item.get("output") or "")
    return " ".join(
        str(part.get("text") or part.get("transcript") or "") for part in item.get("content") or ()
    )
