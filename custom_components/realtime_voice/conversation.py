"""One conversation: the call, the audio devices and everything else that lives only as long.

`VoiceSession.start` creates a `Conversation`, its end discards it. The conversation opens its
parts into one `AsyncExitStack`, so every way out (an end, a failed start, a lost call, Home
Assistant stopping) is the same `aclose()`, and nothing of one call can leak into the next.
What outlives a call (the state entities show, usage, the lock) is the owner's: the box.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import datetime
from functools import partial
import logging
import time
from typing import Any, Final, Protocol

import aiohttp
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from .audio import AudioDeviceError
from .audio_link import AudioLink, AudioSettings
from .budget import GOODBYE_MAX_OUTPUT_TOKENS
from .const import LOGGER, Box, EndReason
from .prompts import goodbye_prompt, say_prompt
from .realtime.connection import CloseReason, RealtimeConnection, Timeouts
from .realtime.errors import NotConnectedError
from .realtime.events import (
    AssistantTranscriptDelta,
    AssistantTranscriptDone,
    ErrorEvent,
    FunctionCall,
    InputAudioCommitted,
    InputTranscriptCompleted,
    OutputAudioCleared,
    OutputAudioStarted,
    OutputAudioStopped,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SpeechStarted,
    SpeechStopped,
)
from .realtime.http import RealtimeHttp
from .realtime.responses import ResponseRequest
from .realtime.session_config import SessionConfig
from .settings import SessionSettings
from .state import Activity
from .tool_batches import FollowUp, ToolBatches
from .tools import ToolRouter

LAST_WORDS_SECONDS: Final = 8.0
"""The longest the last words (or the model's own goodbye) may play before the call closes."""
PLAY_OUT_SECONDS: Final = 3.0
"""The longest the speaker may go on playing what it holds once the server is quiet."""
BENIGN_ERRORS: Final = frozenset({"response_cancel_not_active"})
"""Errors of a race we cannot avoid: the response ended just before our cancel reached it."""
LIVE_TEXT_INTERVAL: Final = 0.25
"""Live transcript text reaches entities at most this often, so the recorder is not flooded."""

type Background = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


class ConversationOwner(Protocol):
    """The box a conversation belongs to: what it shows, counts and how it ends."""

    @property
    def activity(self) -> Activity:
        """Return what the box is doing now."""

    def set_activity(self, activity: Activity) -> None:
        """Show what the conversation is doing (ignored once it is over)."""

    def show_live_text(self, text: str) -> None:
        """Show the assistant's words while they are still arriving."""

    def transcript(self, role: str, text: str) -> None:
        """Record a finished utterance."""

    def count_response(self, event: ResponseDone) -> None:
        """Bill a finished response; the owner may end the conversation over it."""

    def count_transcription(self, event: InputTranscriptCompleted) -> None:
        """Bill the transcription of one utterance."""

    def failed(self, detail: str, err: Exception | None = None) -> None:
        """Note why the conversation is about to end badly; report err where the user acts."""

    def end_soon(
        self, conversation: Conversation, reason: EndReason, last_words: str | None = None
    ) -> None:
        """End this conversation (if it is still the box's) from a callback."""


class Conversation:
    """One call: audio link, connection, timers, tool tasks and live text."""

    def __init__(
        self,
        hass: HomeAssistant,
        owner: ConversationOwner,
        *,
        box: Box,
        settings: SessionSettings,
        http: aiohttp.ClientSession,
        tools: ToolRouter,
        device_id: str | None,
        background: Background,
    ) -> None:
        """Prepare; nothing is opened until open()."""
        self.hass = hass
        self._owner = owner
        self._box = box
        self._settings = settings
        self._http = http
        self._tools = tools
        self._device_id = device_id
        self._background = background
        self._stack = AsyncExitStack()
        self._audio: AudioLink | None = None
        self._connection: RealtimeConnection | None = None
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._tool_batches = ToolBatches()
        self._live_text = ""
        self._finished_item = ""
        self._closed = False
        self.ending = False
        """Its last words are being said: nothing new may start in it."""
        self.started = time.monotonic()

    # --- Opening and closing -----------------------------------------------------------------

    async def open(self, instructions: str | None) -> None:
        """Open the audio devices, then the call, then configure the session."""
        try:
            self._audio = await AudioLink.async_open(
                self.hass,
                AudioSettings.from_settings(self._settings),
                self._on_device_lost,
                self._background,
                box=self._box,
            )
            self._stack.push_async_callback(self._audio.async_close)
            config = await self._session_config(instructions)
            timeouts = Timeouts()
            settings = self._settings
            self._connection = await RealtimeConnection.open(
                RealtimeHttp(self._http, settings.base_url, settings.api_key, timeouts.http),
                session=config,
                timeouts=timeouts,
                audio_track=self._audio.microphone,
                on_event=self._on_event,
                on_closed=self._on_closed,
                on_audio=self._audio.speaker.write_opus,
            )
            self._stack.push_async_callback(self._connection.close)
            self._stack.callback(self._stop_work)  # first out: nothing new starts while closing
            await self._connection.update_session(config)
            if self._connection.remote_audio is not None:
                self._audio.play(self._connection.remote_audio)
        except BaseException:
            await self.aclose()
            raise
        self._arm("max_duration", self._settings.max_duration * 60, EndReason.MAX_DURATION)
        self.touch()

    async def aclose(self) -> None:
        """Hang up and release the devices; the one way out of every conversation."""
        self._closed = True
        await self._stack.aclose()
        self._stop_work()  # events that arrived while the call closed may have armed timers

    def _stop_work(self) -> None:
        self._closed = True
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        for task in self._tool_tasks:
            task.cancel()  # a tool still running has nobody left to answer

    async def _session_config(self, instructions: str | None) -> SessionConfig:
        """Build the session: persona, voice, listening, and the tools of the LLM API."""
        settings = self._settings
        prepared = await self._tools.async_prepare(self._device_id)
        persona = instructions or settings.instructions
        return SessionConfig(
            model=settings.model,
            instructions="\n\n".join(part for part in (persona, prepared.prompt) if part),
            voice=settings.voice,
            turn_detection=settings.turn_detection,
            transcription_model=settings.transcription_model,
            transcription_language=settings.transcription_language,
            noise_reduction=settings.noise_reduction,
            tools=prepared.specs,
            reasoning_effort=settings.reasoning_effort,
            truncation=settings.truncation,
        )

    # --- What the box asks of it --------------------------------------------------------------

    def say(self, text: str) -> None:
        """Have the assistant say text, in the persona's voice, once it is its turn."""
        self._require_connection().create_response(ResponseRequest(say_prompt(text)))

    def send_text(self, text: str) -> None:
        """Add what the user typed and let the model answer it."""
        connection = self._require_connection()
        self._tools.user_spoke()
        connection.add_user_text(text)
        connection.create_response()

    async def say_last_words(self, reason: EndReason, last_words: str | None) -> None:
        """Stop or let finish what is being said, then say the last words, each bounded.

        The model's own goodbye (end_session) is let finish; anything else is cut off on the
        server and here, so that the last words are heard next, not after the rest of a reply.
        The call may drop at any await: then there is nothing left to say.
        """
        self.ending = True
        connection = self._connection
        try:
            if connection is None or connection.is_closed:
                return
            if reason is EndReason.GOODBYE:
                await connection.wait_quiet(LAST_WORDS_SECONDS)
            elif connection.busy:
                self._interrupt(connection)
            if last_words and not connection.is_closed:
                # A spending limit bounds its goodbye too.
                limit = GOODBYE_MAX_OUTPUT_TOKENS if reason is EndReason.BUDGET else None
                connection.create_response(ResponseRequest(last_words, max_output_tokens=limit))
                if not await connection.wait_quiet(LAST_WORDS_SECONDS):
                    LOGGER.debug("The assistant was still talking after %s s", LAST_WORDS_SECONDS)
        except NotConnectedError:
            LOGGER.debug("The call ended before the last words were said")
        if self._audio is not None and not await self._audio.async_played_out(PLAY_OUT_SECONDS):
            LOGGER.debug("The speaker still held audio after %s s", PLAY_OUT_SECONDS)

    def audio_diagnostics(self) -> dict[str, Any]:
        """Return the audio devices' counters."""
        return self._audio.diagnostics() if self._audio is not None else {}

    def _require_connection(self) -> RealtimeConnection:
        if self._connection is None or self._connection.is_closed or self.ending:
            raise NotConnectedError("the conversation is ending")
        return self._connection

    def _interrupt(self, connection: RealtimeConnection) -> None:
        """Silence the speaker now, then stop the reply and its audio on the server."""
        if self._audio is not None:
            self._audio.flush()
        connection.interrupt()

    # --- Timers --------------------------------------------------------------------------------

    def _arm(self, name: str, seconds: float, reason: EndReason) -> None:
        """(Re)start a timer that ends the conversation."""
        if self._closed:
            return
        if cancel := self._timers.pop(name, None):
            cancel()
        self._timers[name] = async_call_later(
            self.hass, seconds, partial(self._on_timer, name, reason)
        )

    @callback
    def _on_timer(self, name: str, reason: EndReason, _now: datetime) -> None:
        self._timers.pop(name, None)
        if reason is EndReason.IDLE and self._owner.activity is not Activity.LISTENING:
            self.touch()  # someone is speaking or the model is thinking: not idle
            return
        self._owner.end_soon(self, reason)

    def touch(self) -> None:
        """Something was said: the idle timeout starts again."""
        self._arm("idle", self._settings.idle_timeout, EndReason.IDLE)

    # --- Callbacks of the parts ------------------------------------------------------------

    @callback
    def _on_closed(self, reason: CloseReason, detail: str) -> None:
        """End the conversation when the call ended, unless we closed it ourselves."""
        if reason is CloseReason.CLIENT:
            return
        LOGGER.info("The Realtime call ended: %s (%s)", reason, detail)
        if reason is CloseReason.SESSION_EXPIRED:
            self._owner.end_soon(self, EndReason.EXPIRED)
            return
        self._owner.failed(detail or str(reason))
        self._owner.end_soon(self, EndReason.ERROR)

    @callback
    def _on_device_lost(self, err: AudioDeviceError) -> None:
        """End the conversation, saying why, when the microphone or speaker went away."""
        LOGGER.warning("Audio device lost: %s", err)
        self._owner.failed(str(err), err)
        self._owner.end_soon(self, EndReason.ERROR)

    @callback
    def _on_event(self, event: ServerEvent) -> None:  # noqa: C901, PLR0912 - one case a type
        """Turn one server event into what the box shows, says and does."""
        match event:
            case SpeechStarted():
                # The user talks over the assistant: over what the server still sends, or over
                # what the speaker still plays of it (a busy machine holds more).
                speaking = self._owner.activity is Activity.ASSISTANT_SPEAKING
                playing = self._audio is not None and self._audio.speaker.is_playing
                if (speaking or playing) and self._connection:
                    self._interrupt(self._connection)
                self._tools.new_turn()
                self._owner.set_activity(Activity.USER_SPEAKING)
                self.touch()
            case SpeechStopped():
                self._owner.set_activity(Activity.THINKING)
                self.touch()
            case InputAudioCommitted():
                self._tools.user_spoke(event.item_id)
            case ResponseCreated():
                if self._owner.activity is not Activity.ASSISTANT_SPEAKING:
                    self._owner.set_activity(Activity.THINKING)
            case OutputAudioStarted():
                if self._audio is not None:
                    self._audio.assistant_speaking(speaking=True)
                self._owner.set_activity(Activity.ASSISTANT_SPEAKING)
            case OutputAudioStopped() | OutputAudioCleared():
                self._on_audio_ended(cleared=isinstance(event, OutputAudioCleared))
            case ResponseDone():
                self._on_response_done(event)
            case AssistantTranscriptDelta():
                self._on_assistant_delta(event)
            case AssistantTranscriptDone():
                self._finished_item, self._live_text = event.item_id, ""
                if cancel := self._timers.pop("live_text", None):
                    cancel()
                self._owner.transcript("assistant", event.transcript)
            case InputTranscriptCompleted():
                self._tools.user_spoke(event.item_id)
                self._owner.transcript("user", event.transcript)
                self._owner.count_transcription(event)
            case FunctionCall():
                self._on_function_call(event)
            case ErrorEvent():
                LOGGER.log(
                    logging.DEBUG if event.code in BENIGN_ERRORS else logging.WARNING,
                    "Realtime error %s%s: %s",
                    event.code or event.error_type,
                    f" (for {event.client_event_type})" if event.client_event_type else "",
                    event.message,
                )

    def _on_audio_ended(self, *, cleared: bool) -> None:
        if self._audio is not None:
            if cleared:
                self._audio.flush()
            self._audio.assistant_speaking(speaking=False)
        if self._owner.activity is Activity.ASSISTANT_SPEAKING:
            # Not over user_speaking: a barge-in's cleared comes after speech_started.
            self._owner.set_activity(Activity.LISTENING)
        self.touch()

    def _on_response_done(self, event: ResponseDone) -> None:
        self._owner.count_response(event)
        connection = self._connection
        spoke = connection is not None and connection.spoke(event.response_id)
        if not spoke and self._owner.activity is Activity.THINKING:
            self._owner.set_activity(Activity.LISTENING)  # a tool call or a failure ends here
        self._follow_up(self._tool_batches.response_done(event.response_id))

    def _on_assistant_delta(self, event: AssistantTranscriptDelta) -> None:
        if event.item_id == self._finished_item:
            return  # a late delta must not replace the final text
        self._live_text += event.delta
        if "live_text" not in self._timers and not self._closed:
            self._timers["live_text"] = async_call_later(
                self.hass, LIVE_TEXT_INTERVAL, self._publish_live_text
            )

    @callback
    def _publish_live_text(self, _now: datetime) -> None:
        self._timers.pop("live_text", None)
        if self._live_text:
            self._owner.show_live_text(self._live_text)

    # --- Tools -----------------------------------------------------------------------------

    def _on_function_call(self, call: FunctionCall) -> None:
        if self._closed:
            return
        self.touch()
        self._tool_batches.call_started(call.response_id)
        task = self._background(self._run_tool(call), f"tool {call.name}")
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _run_tool(self, call: FunctionCall) -> None:
        """Run one function call and give the model its result.

        The model answers once every call of its response has its output (ToolBatches).
        """
        outcome = await self._tools.async_call(call, self._device_id)
        connection = self._connection
        if connection is None or connection.is_closed:
            return
        connection.send_function_output(outcome.call_id, outcome.output)
        if outcome.end_session:
            spoke = connection.spoke(call.response_id)
            goodbye = None if spoke else goodbye_prompt(outcome.goodbye or "Goodbye!")
            self._owner.end_soon(self, EndReason.GOODBYE, goodbye)
        self._follow_up(self._tool_batches.call_finished(call.response_id, outcome.follow_up))

    def _follow_up(self, follow_up: FollowUp) -> None:
        """Ask for the response that follows a complete batch of calls, if any."""
        connection = self._connection
        if connection is None or connection.is_closed:
            return
        if follow_up is FollowUp.ANSWER:
            connection.create_response()
        elif follow_up is FollowUp.ANSWER_WITHOUT_TOOLS:
            connection.create_response(ResponseRequest(tools_allowed=False))
