"""VoiceSession: one box, its state and its public actions, across conversations.

idle → connecting → listening ⇄ user_speaking → thinking → assistant_speaking → … → ending → idle

What lives as long as one call (audio devices, the connection, timers, tool tasks) is a
`Conversation`; the session keeps what outlives it: the lock that serialises start and end,
the `SessionState` snapshot entities render, settings, usage and spending limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import asdict, replace
from functools import partial
import time
from typing import Any

import aiohttp
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .audio.clip import Clip
from .audio_link import AudioSettings, async_play_clip
from .budget import LimitReached, limit_reached, reserve
from .const import (
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
    EVENT_TRANSCRIPT,
    EVENT_USAGE,
    LOGGER,
    Box,
    EndReason,
)
from .conversation import Conversation
from .model_issues import ModelProblem, async_clear_refusal, async_raise
from .prompts import goodbye_prompt, limit_goodbye_prompt, say_prompt
from .realtime.errors import MODEL_ERROR_CODES, ModelUnavailableError
from .realtime.events import InputTranscriptCompleted, ResponseDone
from .settings import SessionSettings
from .state import ACTIVE, Activity, SessionState, Transcript
from .tools import ToolRouter
from .translated_errors import (
    budget_error,
    budget_issue_id,
    clear_issues,
    report_error,
    translated,
)
from .usage import UsageLedger

type StateListener = Callable[[SessionState], None]


class VoiceSession:
    """One box: its conversations, one at a time, and what entities show of them."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        entry: ConfigEntry,
        box: Box,
        device_id: Callable[[], str | None],
        settings: SessionSettings,
        http: aiohttp.ClientSession,
        tools: ToolRouter,
        ledger: UsageLedger,
        on_auth_failed: Callable[[], None],
    ) -> None:
        """Prepare an idle box; nothing is opened until a conversation starts."""
        self.hass = hass
        self.entry_id = entry.entry_id
        self.box = box
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
        self._conversation: Conversation | None = None
        self._end_task: asyncio.Task[None] | None = None

    # --- State for entities ------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Return the current snapshot."""
        return self._state

    @property
    def activity(self) -> Activity:
        """Return what the box is doing now."""
        return self._state.activity

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
        ir.async_delete_issue(self.hass, DOMAIN, budget_issue_id(self.box.id))  # new limits

    def audio_diagnostics(self) -> dict[str, Any]:
        """Return the audio devices' counters while a conversation runs."""
        conversation = self._conversation
        return conversation.audio_diagnostics() if conversation is not None else {}

    # --- Actions -----------------------------------------------------------------------------

    @translated
    async def async_start(
        self, instructions: str | None = None, greeting: str | None = None, *, greet: bool = True
    ) -> None:
        """Start a conversation; raise a translated HomeAssistantError if it cannot."""
        async with self._lock:
            conversation = await self._start(instructions)
            if greet and (greeting := greeting or self.settings.greeting):
                conversation.say(greeting)

    @translated
    async def async_end(
        self, goodbye: str | None = None, reason: EndReason = EndReason.USER
    ) -> None:
        """End the conversation, after saying goodbye if asked; raise if none is running."""
        async with self._lock:
            if self._conversation is None:
                raise HomeAssistantError(translation_domain=DOMAIN, translation_key="not_running")
            await self._finish(reason, goodbye_prompt(goodbye) if goodbye else None)

    @translated
    async def async_send_text(self, text: str) -> None:
        """Add what the user typed to the conversation and let the model answer it."""
        self._running().send_text(text)

    @translated
    async def async_announce(self, message: str, *, listen: bool) -> None:
        """Say message, starting a conversation if none runs; then listen, or end.

        It waits for a conversation that is connecting or ending, so it is never lost.
        """
        async with self._lock:
            conversation = self._conversation or await self._start(None)
            if listen:
                conversation.say(message)
            else:
                await self._finish(EndReason.USER, say_prompt(message))

    async def async_shutdown(self) -> None:
        """End any conversation because Home Assistant stops or the entry unloads."""
        async with self._lock:
            if self._conversation is not None:
                await self._finish(EndReason.SHUTDOWN, None)

    @translated
    async def async_play_clip(self, clip: Clip) -> None:
        """Play a sound clip (an announcement's media) on the speaker while no call runs."""
        async with self._lock:
            if self._state.active:
                raise HomeAssistantError(
                    translation_domain=DOMAIN, translation_key="already_running"
                )
            await async_play_clip(self.hass, AudioSettings.from_settings(self.settings), clip)

    def report_error(self, err: Exception) -> None:
        """Show a failed action's cause and raise the repair issue the user can act on."""
        report_error(self.hass, err, self.box, on_auth_failed=self._on_auth_failed)
        if isinstance(err, ModelUnavailableError):
            self._raise_model_refused(err.message)
        self._update(last_error=str(err))

    def _running(self) -> Conversation:
        """Return the conversation that can take input, or raise `not_running`."""
        conversation = self._conversation
        if conversation is None or conversation.ending:
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="not_running")
        return conversation

    # --- Starting and ending (the lock is held) -----------------------------------------

    async def _start(self, instructions: str | None) -> Conversation:
        """Open a conversation and show it as listening."""
        if self._state.active:
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="already_running")
        self._refuse_over_budget()
        self._update(activity=Activity.CONNECTING, last_error=None)
        conversation = Conversation(
            self.hass,
            self,
            box=self.box,
            settings=self.settings,
            http=self._http,
            tools=self._tools,
            device_id=self._device_id(),
            background=self._background,
        )
        try:
            await conversation.open(instructions)
        except BaseException:
            self._update(activity=Activity.IDLE)  # cancelled or failed: nothing runs
            raise
        self._conversation = conversation
        self._ledger.new_session()
        self._update(activity=Activity.LISTENING, session_started=dt_util.utcnow())
        self._publish_usage()
        clear_issues(self.hass, self.box.id)
        ir.async_delete_issue(self.hass, DOMAIN, budget_issue_id(self.box.id))
        self._fire(EVENT_SESSION_STARTED, {})
        return conversation

    async def _finish(self, reason: EndReason, last_words: str | None) -> None:
        """Say the last words if any, then close the conversation, on every path."""
        conversation = self._conversation
        assert conversation is not None  # noqa: S101 - callers check under the lock
        if last_words is None and reason is not EndReason.GOODBYE:
            self._update(activity=Activity.ENDING)  # nothing more will be said
        try:
            await conversation.say_last_words(reason, last_words)
        finally:
            self._update(activity=Activity.ENDING)
            try:
                await conversation.aclose()
            finally:
                self._conversation = None
                self._ledger.async_save()
                self._update(activity=Activity.IDLE)
                duration = round(time.monotonic() - conversation.started, 1)
                self._fire(EVENT_SESSION_ENDED, {"reason": reason, "duration": duration})

    @callback
    def end_soon(
        self, conversation: Conversation, reason: EndReason, last_words: str | None = None
    ) -> None:
        """End a conversation from a callback (timer, far side, tool, limit), in a task."""
        if self._end_task is not None and not self._end_task.done():
            return
        self._end_task = self._background(
            self._end_quietly(conversation, reason, last_words), "end conversation"
        )

    async def _end_quietly(
        self, conversation: Conversation, reason: EndReason, last_words: str | None
    ) -> None:
        """End the conversation if it is still the one running; nobody waits for an error."""
        async with self._lock:
            if self._conversation is conversation and not conversation.ending:
                await self._finish(reason, last_words)

    # --- What a conversation tells its box ---------------------------------------------------

    def set_activity(self, activity: Activity) -> None:
        """Show what the conversation is doing, while it runs."""
        if self._state.activity in ACTIVE:
            self._update(activity=activity)

    def show_live_text(self, text: str) -> None:
        """Show the assistant's words while they arrive."""
        self._update(assistant_transcript=Transcript(text, dt_util.utcnow(), final=False))

    def transcript(self, role: str, text: str) -> None:
        """Record a finished utterance: entity state and a bus event, so nothing is lost."""
        entry = Transcript(text, dt_util.utcnow())
        key = "user_transcript" if role == "user" else "assistant_transcript"
        self._update(**{key: entry})
        self._fire(EVENT_TRANSCRIPT, {"role": role, "text": text})

    def failed(self, detail: str, err: Exception | None = None) -> None:
        """Show why the conversation ends badly; raise the repair issue of err, if any."""
        if err is not None:
            report_error(self.hass, err, self.box, on_auth_failed=self._on_auth_failed)
        self._update(last_error=detail)

    def count_response(self, event: ResponseDone) -> None:
        """Bill a finished response, and act on a model OpenAI refused mid-call."""
        cost = self._ledger.add(event.usage)
        self._count("response", event.usage.total, asdict(event.usage), cost, event.response_id)
        if event.error_code in MODEL_ERROR_CODES:
            self._on_model_refused(f"{event.error_code} ({event.status})")
        elif event.status == "failed":
            LOGGER.warning("A response failed: %s", event.reason or event.error_code)
        elif event.status == "completed":
            async_clear_refusal(self.hass, self.box.id)  # OpenAI accepts the model

    def count_transcription(self, event: InputTranscriptCompleted) -> None:
        """Bill the transcription of one utterance."""
        cost = self._ledger.add_transcription(event.usage)
        self._count("transcription", event.usage.total, asdict(event.usage), cost, event.item_id)

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
        conversation = self._conversation
        if conversation is None:
            return
        if (reached := self._limit_ahead(self._ledger.dearest_turn)) is not None:
            LOGGER.info("Ending the conversation: the %s spending limit is reached", reached.kind)
            self.end_soon(conversation, EndReason.BUDGET, limit_goodbye_prompt(reached))

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
            raise budget_error(self.hass, self.box, reached)

    def _on_model_refused(self, detail: str) -> None:
        """OpenAI refused the model mid-call: raise the model issue and end the conversation."""
        LOGGER.warning("OpenAI refused the model %s: %s", self.settings.model, detail)
        self._raise_model_refused(detail)
        self._update(last_error=f"model {self.settings.model} refused: {detail}")
        if self._conversation is not None:
            self.end_soon(self._conversation, EndReason.ERROR)

    def _raise_model_refused(self, message: str) -> None:
        models = self._entry.runtime_data.models
        async_raise(
            self.hass,
            self.entry_id,
            self.box,
            self.settings.model,
            ModelProblem.REFUSED,
            listed=models,
            message=message,
        )

    # --- Helpers -----------------------------------------------------------------------------

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run work as a named task of the entry, cancelled if the entry unloads."""
        return self._entry.async_create_background_task(self.hass, work, f"{DOMAIN} {name}")

    def _fire(self, event_type: str, data: dict[str, Any]) -> None:
        self.hass.bus.async_fire(
            event_type, {"entry_id": self.entry_id, "device_id": self._device_id(), **data}
        )
