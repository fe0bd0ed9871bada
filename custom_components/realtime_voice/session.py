"""VoiceSession: one box's conversation, from the start action to the last byte of audio.

idle → connecting → listening ⇄ user_speaking → thinking → assistant_speaking → … → ending → idle

The session owns the audio devices and the Realtime connection while a conversation runs, and
one SessionState snapshot that entities render. Start and end are serialised by one lock; every
path out of a conversation goes through `_teardown`, which releases everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import asdict, replace
from datetime import datetime
from functools import partial
import logging
import time
from typing import Any, Final

import aiohttp
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .audio import AudioDeviceError, AudioError
from .audio.clip import Clip
from .audio_link import AudioLink, AudioSettings, async_play_clip
from .budget import GOODBYE_MAX_OUTPUT_TOKENS, LimitReached, limit_reached, reserve
from .const import (
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
    EVENT_TRANSCRIPT,
    EVENT_USAGE,
    LOGGER,
    EndReason,
)
from .model_issues import ModelProblem, async_clear_refusal, async_raise
from .realtime.connection import CloseReason, RealtimeConnection, Timeouts
from .realtime.errors import MODEL_ERROR_CODES, ModelUnavailableError
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
    SessionConfig,
    SpeechStarted,
    SpeechStopped,
    user_text,
)
from .settings import SessionSettings
from .state import ACTIVE, Activity, SessionState, Transcript
from .tool_batches import FollowUp, ToolBatches
from .tools import ToolRouter
from .translated_errors import budget_error, budget_issue_id, clear_issues, translate_error
from .usage import UsageLedger

GOODBYE_DRAIN_SECONDS: Final = 8.0
"""The longest a goodbye may play before the call is closed anyway."""
BENIGN_ERRORS: Final = frozenset({"response_cancel_not_active"})
"""Errors of a race we cannot avoid: the response ended just before our cancel reached it."""
LIVE_TEXT_INTERVAL: Final = 0.25
"""Live transcript text reaches entities at most this often, so the recorder is not flooded."""

type StateListener = Callable[[SessionState], None]


class VoiceSession:
    """The conversation of one box."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        entry: ConfigEntry,
        device_id: Callable[[], str | None],
        settings: SessionSettings,
        http: aiohttp.ClientSession,
        tools: ToolRouter,
        ledger: UsageLedger,
        on_auth_failed: Callable[[], None],
    ) -> None:
        """Prepare an idle session; nothing is opened until start()."""
        self.hass = hass
        self.entry_id = entry.entry_id
        self._entry = entry
        self._device_id = device_id
        self.settings = settings
        self._http = http
        self._tools = tools
        self._ledger = ledger
        self._on_auth_failed = on_auth_failed
        spend = ledger.spend()
        self._state = SessionState(
            total_tokens=ledger.total_tokens,
            total_cost=ledger.total_cost,
            cost_today=spend.today,
            cost_this_month=spend.this_month,
        )
        self._listeners: list[StateListener] = []
        self._lock = asyncio.Lock()
        self._connection: RealtimeConnection | None = None
        self._audio: AudioLink | None = None
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._quiet = asyncio.Event()
        """Set while no response is running and no assistant audio is playing."""
        self._spoken_responses: set[str] = set()
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._tool_batches = ToolBatches()
        self._end_task: asyncio.Task[None] | None = None
        self._live_text = ""
        self._finished_item = ""
        self._started = 0.0

    # --- State for entities ------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Return the current snapshot."""
        return self._state

    @callback
    def async_subscribe(self, listener: StateListener) -> CALLBACK_TYPE:
        """Call listener with every new snapshot; return the unsubscribe callback."""
        self._listeners.append(listener)
        return partial(self._listeners.remove, listener)

    @callback
    def _update(self, **changes: Any) -> None:
        """Replace the snapshot and tell the listeners, only when something changed."""
        new = replace(self._state, **changes)
        if new == self._state:
            return
        self._state = new
        for listener in list(self._listeners):
            listener(new)

    @callback
    def apply_settings(self, settings: SessionSettings) -> None:
        """Use new options from the next conversation on."""
        self.settings = settings
        self._tools.policy = settings.tool_policy
        self._ledger.prices = settings.prices
        self._ledger.transcription_prices = settings.transcription_prices
        ir.async_delete_issue(self.hass, DOMAIN, budget_issue_id(self.entry_id))  # new limits

    # --- Actions -----------------------------------------------------------------------------

    async def async_start(
        self, instructions: str | None = None, greeting: str | None = None, *, greet: bool = True
    ) -> None:
        """Start a conversation; raise a translated HomeAssistantError if it cannot."""
        async with self._lock:
            if self._state.active:
                raise HomeAssistantError(
                    translation_domain=DOMAIN, translation_key="already_running"
                )
            self._refuse_over_budget()
            self._update(activity=Activity.CONNECTING, last_error=None)
            try:
                await self._open(instructions)
            except BaseException as err:
                # Cancelled too (Home Assistant stopping): release what was opened, then go on.
                await self._teardown(EndReason.ERROR, announce=False)
                if isinstance(err, Exception):
                    raise self._translate(err) from err
                raise
            self._begin()
        if greet and (greeting := greeting or self.settings.greeting):
            self._say(greeting)

    async def async_end(
        self, goodbye: str | None = None, reason: EndReason = EndReason.USER
    ) -> None:
        """End the conversation, after saying goodbye if asked; raise if none is running."""
        async with self._lock:
            if not self._state.active or self._state.activity is Activity.ENDING:
                raise HomeAssistantError(translation_domain=DOMAIN, translation_key="not_running")
            await self._finish(reason, _goodbye_prompt(goodbye) if goodbye else None)

    async def async_send_text(self, text: str) -> None:
        """Add what the user typed to the conversation and let the model answer it."""
        connection = self._require_connection()
        self._tools.user_spoke()
        connection.send(user_text(text))
        connection.create_response()

    async def async_announce(self, message: str, *, listen: bool) -> None:
        """Say message; keep listening for the answer, or end once it was said."""
        if not self._state.active:
            await self.async_start(greet=False)  # the message is what is said first
        if listen:
            self._say(message)
            return
        async with self._lock:
            if self._state.active:
                await self._finish(EndReason.USER, _say_prompt(message))

    async def async_shutdown(self) -> None:
        """End any conversation because Home Assistant stops or the entry unloads."""
        async with self._lock:
            if self._state.active:
                await self._finish(EndReason.SHUTDOWN, None)

    # --- A sound clip (an announcement's media) -----------------------------------------------

    async def async_play_clip(self, clip: Clip) -> None:
        """Play clip on the speaker while no conversation runs; a conversation waits for it."""
        async with self._lock:
            if self._state.active:
                raise HomeAssistantError(
                    translation_domain=DOMAIN, translation_key="already_running"
                )
            try:
                await async_play_clip(self.hass, AudioSettings.from_settings(self.settings), clip)
            except AudioError as err:
                raise self._translate(err) from err

    # --- Opening -----------------------------------------------------------------------------

    async def _open(self, instructions: str | None) -> None:
        """Open the audio devices, then the call, then configure the session."""
        settings = self.settings
        self._audio = await AudioLink.async_open(
            self.hass, AudioSettings.from_settings(settings), self._on_device_lost, self._background
        )
        config = await self._session_config(instructions)
        self._connection = await RealtimeConnection.open(
            self._http,
            base_url=settings.base_url,
            api_key=settings.api_key,
            session=config,
            audio_track=self._audio.microphone,
            on_event=self._on_event,
            on_closed=self._on_closed,
            timeouts=Timeouts(),
        )
        await self._connection.update_session(config)
        if self._connection.remote_audio is not None:
            self._audio.play(self._connection.remote_audio)

    async def _session_config(self, instructions: str | None) -> SessionConfig:
        """Build the session: persona, voice, listening, and the tools of the LLM API."""
        settings = self.settings
        prepared = await self._tools.async_prepare(self._device_id())
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

    def _begin(self) -> None:
        """Mark the conversation as listening and arm its timers."""
        self._started = time.monotonic()
        self._quiet.set()
        self._spoken_responses.clear()
        self._tool_batches.clear()
        self._ledger.new_session()
        self._update(activity=Activity.LISTENING, session_started=dt_util.utcnow())
        self._publish_usage()
        self._arm("max_duration", self.settings.max_duration * 60, EndReason.MAX_DURATION)
        self._touch()
        clear_issues(self.hass)
        ir.async_delete_issue(self.hass, DOMAIN, budget_issue_id(self.entry_id))
        self._fire(EVENT_SESSION_STARTED, {})

    def _say(self, text: str) -> None:
        """Have the assistant say text, in the persona's voice."""
        if self._connection is not None and not self._connection.is_closed:
            self._connection.create_response(_say_prompt(text))

    # --- Ending ------------------------------------------------------------------------------

    async def _finish(self, reason: EndReason, last_words: str | None) -> None:
        """Say the last words if any, then tear down. The lock is held.

        A goodbye from the model (end_session) may still be playing in the response that
        called the tool: it is let finish, not cut off.
        """
        self._update(activity=Activity.ENDING)
        connection = self._connection
        if connection is not None and not connection.is_closed:
            if reason is EndReason.GOODBYE:
                await self._until_quiet()
            elif connection.cancel_response() and self._audio is not None:
                self._audio.flush()
            if last_words:
                self._quiet.clear()
                # A spending limit bounds its goodbye too.
                limit = GOODBYE_MAX_OUTPUT_TOKENS if reason is EndReason.BUDGET else None
                connection.create_response(last_words, max_output_tokens=limit)
                await self._until_quiet()
        await self._teardown(reason)

    async def _until_quiet(self) -> None:
        """Wait, bounded, until the running response and its audio are over."""
        try:
            async with asyncio.timeout(GOODBYE_DRAIN_SECONDS):
                await self._quiet.wait()
        except TimeoutError:
            LOGGER.debug("The assistant was still talking after %s s", GOODBYE_DRAIN_SECONDS)

    async def _teardown(self, reason: EndReason, *, announce: bool = True) -> None:
        """Release the call and the audio devices; every conversation ends here."""
        self._cancel_timers()
        for task in self._tool_tasks:
            task.cancel()  # a tool still running has nobody left to answer
        connection, self._connection = self._connection, None
        audio, self._audio = self._audio, None
        try:
            if connection is not None:
                await connection.close()
        finally:
            if audio is not None:
                await audio.async_close()
            self._ledger.async_save()
            self._update(activity=Activity.IDLE)
            # Events that arrived while closing may have armed timers again.
            self._cancel_timers()
            self._live_text = ""  # a reply cut off by the end must not prefix the next one
            if announce:
                self._fire(
                    EVENT_SESSION_ENDED,
                    {"reason": reason, "duration": round(time.monotonic() - self._started, 1)},
                )

    @callback
    def _end_soon(self, reason: EndReason, last_words: str | None = None) -> None:
        """End from a callback (timer, far side, tool), in a task of the entry."""
        if self._end_task is not None and not self._end_task.done():
            return
        self._end_task = self._background(self._end_quietly(reason, last_words), "end conversation")

    async def _end_quietly(self, reason: EndReason, last_words: str | None) -> None:
        """End if still running; nobody waits for an error here."""
        async with self._lock:
            if self._state.active and self._state.activity is not Activity.ENDING:
                await self._finish(reason, last_words)

    @callback
    def _on_closed(self, reason: CloseReason, detail: str) -> None:
        """End the conversation when the connection ended, unless we closed it ourselves."""
        if reason is CloseReason.CLIENT:
            return
        LOGGER.info("The Realtime call ended: %s (%s)", reason, detail)
        ended = EndReason.EXPIRED if reason is CloseReason.SESSION_EXPIRED else EndReason.ERROR
        if ended is EndReason.ERROR:
            self._update(last_error=detail or str(reason))
        self._end_soon(ended)

    @callback
    def _on_device_lost(self, err: AudioDeviceError) -> None:
        """End the conversation, saying why, when the microphone or speaker went away."""
        LOGGER.warning("Audio device lost: %s", err)
        translate_error(self.hass, err, on_auth_failed=self._on_auth_failed)
        self._update(last_error=str(err))
        self._end_soon(EndReason.ERROR)

    def audio_diagnostics(self) -> dict[str, Any]:
        """Return the audio devices' counters while a conversation runs."""
        return self._audio.diagnostics() if self._audio is not None else {}

    # --- Timers ------------------------------------------------------------------------------

    def _cancel_timers(self) -> None:
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()

    def _arm(self, name: str, seconds: float, reason: EndReason) -> None:
        """(Re)start a timer that ends the conversation."""
        if cancel := self._timers.pop(name, None):
            cancel()
        self._timers[name] = async_call_later(
            self.hass, seconds, partial(self._on_timer, name, reason)
        )

    @callback
    def _on_timer(self, name: str, reason: EndReason, _now: datetime) -> None:
        self._timers.pop(name, None)
        if reason is EndReason.IDLE and self._state.activity is not Activity.LISTENING:
            self._touch()  # someone is speaking or the model is thinking: not idle
            return
        self._end_soon(reason)

    def _touch(self) -> None:
        """Something was said: the idle timeout starts again."""
        if self._state.active:
            self._arm("idle", self.settings.idle_timeout, EndReason.IDLE)

    # --- Server events -----------------------------------------------------------------------

    @callback
    def _on_event(self, event: ServerEvent) -> None:
        """Turn one server event into state, entity updates and bus events."""
        handler = self._HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_speech_started(self, _event: SpeechStarted) -> None:
        if self._state.activity is Activity.ASSISTANT_SPEAKING:
            self._barge_in()
        self._tools.new_turn()
        self._set_activity(Activity.USER_SPEAKING)
        self._touch()

    def _barge_in(self) -> None:
        """Let the user talk over the assistant: silence the speaker now, then stop the reply."""
        if self._audio is not None:
            self._audio.flush()
        if self._connection is not None and not self._connection.is_closed:
            self._connection.interrupt()

    def _on_speech_stopped(self, _event: SpeechStopped) -> None:
        self._set_activity(Activity.THINKING)
        self._touch()

    def _on_input_committed(self, event: InputAudioCommitted) -> None:
        self._tools.user_spoke(event.item_id)

    def _on_response_created(self, _event: ResponseCreated) -> None:
        self._quiet.clear()
        if self._state.activity is not Activity.ASSISTANT_SPEAKING:
            self._set_activity(Activity.THINKING)

    def _on_audio_started(self, event: OutputAudioStarted) -> None:
        self._quiet.clear()
        self._spoken_responses.add(event.response_id)
        if self._audio is not None:
            self._audio.assistant_speaking(speaking=True)
        self._set_activity(Activity.ASSISTANT_SPEAKING)

    def _on_audio_ended(self, event: OutputAudioStopped | OutputAudioCleared) -> None:
        if self._audio is not None:
            if isinstance(event, OutputAudioCleared):
                self._audio.flush()
            self._audio.assistant_speaking(speaking=False)
        if not self._connection_busy():
            self._quiet.set()
        if self._state.activity is Activity.ASSISTANT_SPEAKING:
            # Not over user_speaking: a barge-in's cleared comes after speech_started.
            self._set_activity(Activity.LISTENING)
        self._touch()

    def _on_response_done(self, event: ResponseDone) -> None:
        cost = self._ledger.add(event.usage)
        self._count("response", event.usage.total, asdict(event.usage), cost, event.response_id)
        if event.error_code in MODEL_ERROR_CODES:
            self._on_model_refused(f"{event.error_code} ({event.status})")
        elif event.status == "failed":
            LOGGER.warning("A response failed: %s", event.reason or event.error_code)
        elif event.status == "completed":
            async_clear_refusal(self.hass, self.entry_id)  # OpenAI accepts the model
        if event.response_id not in self._spoken_responses and not self._connection_busy():
            self._quiet.set()  # a response without audio (a tool call, a failure) ends here
            if self._state.activity is Activity.THINKING:
                self._set_activity(Activity.LISTENING)
        self._follow_up(self._tool_batches.response_done(event.response_id))

    def _on_assistant_delta(self, event: AssistantTranscriptDelta) -> None:
        if event.item_id == self._finished_item:
            return  # a late delta must not replace the final text
        self._live_text += event.delta
        if "live_text" not in self._timers:
            self._timers["live_text"] = async_call_later(
                self.hass, LIVE_TEXT_INTERVAL, self._publish_live_text
            )

    @callback
    def _publish_live_text(self, _now: datetime) -> None:
        self._timers.pop("live_text", None)
        if self._live_text:
            self._update(
                assistant_transcript=Transcript(self._live_text, dt_util.utcnow(), final=False)
            )

    def _on_assistant_done(self, event: AssistantTranscriptDone) -> None:
        self._finished_item = event.item_id
        self._live_text = ""
        if cancel := self._timers.pop("live_text", None):
            cancel()
        self._transcript("assistant", event.transcript)

    def _on_user_transcript(self, event: InputTranscriptCompleted) -> None:
        self._tools.user_spoke(event.item_id)
        self._transcript("user", event.transcript)
        cost = self._ledger.add_transcription(event.usage)
        self._count("transcription", event.usage.total, asdict(event.usage), cost, event.item_id)

    def _on_function_call(self, event: FunctionCall) -> None:
        connection = self._connection
        if connection is None:
            return
        self._touch()
        self._tool_batches.call_started(event.response_id)
        task = self._background(self._run_tool(connection, event), f"tool {event.name}")
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    def _on_error(self, event: ErrorEvent) -> None:
        LOGGER.log(
            logging.DEBUG if event.code in BENIGN_ERRORS else logging.WARNING,
            "Realtime error %s%s: %s",
            event.code or event.error_type,
            f" (for {event.client_event_type})" if event.client_event_type else "",
            event.message,
        )

    _HANDLERS: Final[dict[type[ServerEvent], Callable[[VoiceSession, Any], None]]] = {
        SpeechStarted: _on_speech_started,
        SpeechStopped: _on_speech_stopped,
        InputAudioCommitted: _on_input_committed,
        ResponseCreated: _on_response_created,
        OutputAudioStarted: _on_audio_started,
        OutputAudioStopped: _on_audio_ended,
        OutputAudioCleared: _on_audio_ended,
        ResponseDone: _on_response_done,
        AssistantTranscriptDelta: _on_assistant_delta,
        AssistantTranscriptDone: _on_assistant_done,
        InputTranscriptCompleted: _on_user_transcript,
        FunctionCall: _on_function_call,
        ErrorEvent: _on_error,
    }

    # --- Usage, spending limits and the model ----------------------------------------------

    def _count(
        self, source: str, tokens: int, usage: dict[str, Any], cost: float, about: str
    ) -> None:
        """Show what was used, tell the bus, and end the conversation at a spending limit."""
        self._publish_usage()
        self._fire(
            EVENT_USAGE,
            {
                "source": source,
                "id": about,
                "model": self.settings.model if source == "response" else None,
                "tokens": tokens,
                "usage": usage,
                "cost": cost,
                "conversation_cost": self._ledger.session_cost,
            },
        )
        if (reached := self._limit_ahead(self._ledger.dearest_turn)) is not None:
            LOGGER.info("Ending the conversation: the %s spending limit is reached", reached.kind)
            self._end_soon(EndReason.BUDGET, _limit_goodbye_prompt(reached))

    def _publish_usage(self) -> None:
        ledger = self._ledger
        spend = ledger.spend()
        self._update(
            session_usage=ledger.session,
            session_transcription=ledger.session_transcription,
            session_cost=ledger.session_cost,
            total_tokens=ledger.total_tokens,
            total_cost=ledger.total_cost,
            cost_today=spend.today,
            cost_this_month=spend.this_month,
        )

    def _limit_ahead(self, dearest_turn: float, *, starting: bool = False) -> LimitReached | None:
        """Return a limit that the next answer and a goodbye might cross."""
        spend = self._ledger.spend()
        if starting:
            spend = replace(spend, conversation=0.0)
        needed = reserve(self.settings.prices, dearest_turn)
        return limit_reached(self.settings.budget, spend, needed)

    def _refuse_over_budget(self) -> None:
        """Raise a translated error (and a repair issue) if a limit leaves no room to talk."""
        if (reached := self._limit_ahead(0.0, starting=True)) is not None:
            self._update(last_error=f"{reached.kind} spending limit reached")
            raise budget_error(self.hass, self.entry_id, reached)

    def _on_model_refused(self, detail: str) -> None:
        """OpenAI refused the model mid-call: raise the model issue and end the conversation."""
        LOGGER.warning("OpenAI refused the model %s: %s", self.settings.model, detail)
        self._raise_model_refused(detail)
        self._update(last_error=f"model {self.settings.model} refused: {detail}")
        self._end_soon(EndReason.ERROR)

    def _raise_model_refused(self, message: str) -> None:
        models = self._entry.runtime_data.models
        async_raise(
            self.hass,
            self._entry,
            self.settings.model,
            ModelProblem.REFUSED,
            models,
            message=message,
        )

    # --- Helpers -----------------------------------------------------------------------------

    async def _run_tool(self, connection: RealtimeConnection, call: FunctionCall) -> None:
        """Run one function call and give the model its result.

        The model answers once every call of its response has its output (ToolBatches).
        """
        outcome = await self._tools.async_call(call, self._device_id())
        if connection.is_closed:
            return
        connection.send(outcome.output_event)
        if outcome.end_session:
            spoken = call.response_id in self._spoken_responses
            goodbye = None if spoken else _goodbye_prompt(outcome.goodbye or "Goodbye!")
            self._end_soon(EndReason.GOODBYE, goodbye)
        self._follow_up(self._tool_batches.call_finished(call.response_id, outcome.follow_up))

    def _follow_up(self, follow_up: FollowUp) -> None:
        """Ask for the response that follows a complete batch of calls, if any."""
        connection = self._connection
        if connection is None or connection.is_closed:
            return
        if follow_up is FollowUp.ANSWER:
            connection.create_response()
        elif follow_up is FollowUp.ANSWER_WITHOUT_TOOLS:
            connection.create_response(tools_allowed=False)

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run work as a named task of the entry, cancelled if the entry unloads."""
        return self._entry.async_create_background_task(self.hass, work, f"{DOMAIN} {name}")

    def _transcript(self, role: str, text: str) -> None:
        """Record a finished utterance: entity state and a bus event, so nothing is lost."""
        entry = Transcript(text, dt_util.utcnow())
        key = "user_transcript" if role == "user" else "assistant_transcript"
        self._update(**{key: entry})
        self._fire(EVENT_TRANSCRIPT, {"role": role, "text": text})

    def _set_activity(self, activity: Activity) -> None:
        if self._state.activity in ACTIVE:
            self._update(activity=activity)

    def _connection_busy(self) -> bool:
        return self._connection is not None and self._connection.response_active

    def _fire(self, event_type: str, data: dict[str, Any]) -> None:
        self.hass.bus.async_fire(
            event_type, {"entry_id": self.entry_id, "device_id": self._device_id(), **data}
        )

    def _require_connection(self) -> RealtimeConnection:
        if self._connection is None or self._state.activity not in ACTIVE:
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="not_running")
        return self._connection

    def _translate(self, err: Exception) -> HomeAssistantError:
        """Turn a failure to start into the error the user sees, and note it in the state."""
        translated = translate_error(self.hass, err, on_auth_failed=self._on_auth_failed)
        if isinstance(err, ModelUnavailableError):
            self._raise_model_refused(err.message)
        self._update(last_error=str(err))
        return translated


def _say_prompt(text: str) -> str:
    """Return the instructions that make the assistant say text."""
    return f"Say this to the user, in your own voice: {text}"


def _goodbye_prompt(text: str) -> str:
    """Return the instructions that make the assistant say goodbye."""
    return f"Say goodbye to the user with these words: {text}"


def _limit_goodbye_prompt(reached: LimitReached) -> str:
    """Return the instructions for the short goodbye at a spending limit."""
    what = {"daily": "today's", "monthly": "this month's", "conversation": "this conversation's"}
    return (
        f"In one short sentence, tell the user that {what[reached.kind]} spending limit is "
        "reached, and say goodbye."
    )
