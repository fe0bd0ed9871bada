"""The box as an Assist satellite: Home Assistant's announce, start_conversation and ask_question.

The box does not run Home Assistant's Assist pipeline: the Realtime model listens, thinks and
speaks. So messages are said in the box's Realtime voice rather than synthesised by the
pipeline's text-to-speech (the base class would ask for a TTS engine the box does not need), and
the satellite's state follows the box's conversation.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final, Literal, override

from homeassistant.components.assist_pipeline import PipelineEvent
from homeassistant.components.assist_satellite import (
    AssistSatelliteAnnouncement,
    AssistSatelliteConfiguration,
    AssistSatelliteEntity,
    AssistSatelliteEntityDescription,
    AssistSatelliteEntityFeature,
)
from homeassistant.components.assist_satellite.const import PREANNOUNCE_URL
from homeassistant.components.assist_satellite.entity import (
    AssistSatelliteAnswer,
    AssistSatelliteState,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .announcement_media import async_load_clip, async_resolve_media_id
from .audio.clip import Clip
from .const import DOMAIN
from .entity import RealtimeVoiceEntity, add_entities
from .question import async_next_user_reply
from .state import Activity, SessionState

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .models import RealtimeVoiceConfigEntry

PARALLEL_UPDATES = 0

SATELLITE: Final = AssistSatelliteEntityDescription(key="satellite", translation_key="satellite")
"""Its translation key names its icon only: a name under it would replace the box's."""

_STATES: Final = {
    Activity.IDLE: AssistSatelliteState.IDLE,
    Activity.CONNECTING: AssistSatelliteState.PROCESSING,
    Activity.LISTENING: AssistSatelliteState.LISTENING,
    Activity.USER_SPEAKING: AssistSatelliteState.LISTENING,
    Activity.THINKING: AssistSatelliteState.PROCESSING,
    Activity.ASSISTANT_SPEAKING: AssistSatelliteState.RESPONDING,
    Activity.ENDING: AssistSatelliteState.RESPONDING,  # the last words are being said
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RealtimeVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each box's satellite."""
    add_entities(entry, async_add_entities, RealtimeVoiceSatellite, [SATELLITE])


class RealtimeVoiceSatellite(RealtimeVoiceEntity, AssistSatelliteEntity):
    """The box, as Home Assistant's voice assistants see it."""

    entity_description: AssistSatelliteEntityDescription
    _attr_name = None  # the box's main entity: it takes the box's name, assist_satellite.<box>
    _attr_supported_features = (
        AssistSatelliteEntityFeature.ANNOUNCE | AssistSatelliteEntityFeature.START_CONVERSATION
    )
    _playing_media = False

    # --- State -------------------------------------------------------------------------------

    @override
    def _on_state(self, state: SessionState) -> None:
        """Show what the conversation does (or that media is playing)."""
        if self._playing_media:
            return
        self._set_state(_STATES[state.activity])

    # --- Configuration: the box has no wake word ---------------------------------------------

    @callback
    @override
    def async_get_configuration(self) -> AssistSatelliteConfiguration:
        """Not supported: a conversation starts by action or button, not by wake word."""
        raise NotImplementedError

    @override
    async def async_set_configuration(self, config: AssistSatelliteConfiguration) -> None:
        """Not supported: the box has no wake words to choose."""
        raise NotImplementedError

    @override
    def on_pipeline_event(self, event: PipelineEvent) -> None:
        """Never called: the box does not run Home Assistant's Assist pipeline."""

    # --- Home Assistant's actions ------------------------------------------------------------

    @override
    async def async_internal_announce(
        self,
        message: str | None = None,
        media_id: str | None = None,
        preannounce: bool = True,
        preannounce_media_id: str = PREANNOUNCE_URL,
    ) -> None:
        """Announce without Home Assistant's text-to-speech: the box says the message."""
        await self.async_announce(
            await self._announcement(message, media_id, preannounce, preannounce_media_id)
        )

    @override
    async def async_announce(self, announcement: AssistSatelliteAnnouncement) -> None:
        """Say the message in the box's voice, or play the media if there is no message.

        Returns once it was said or played; a conversation running on the box ends with it.
        """
        await self._play(await self._clips(announcement))
        if announcement.message:
            await self.session.async_announce(announcement.message, listen=False)

    @override
    async def async_internal_start_conversation(
        self,
        start_message: str | None = None,
        start_media_id: str | None = None,
        extra_system_prompt: str | None = None,
        preannounce: bool = True,
        preannounce_media_id: str = PREANNOUNCE_URL,
    ) -> None:
        """Start a conversation on the box that opens with the message (or media)."""
        self._extra_system_prompt = extra_system_prompt
        announcement = await self._announcement(
            start_message, start_media_id, preannounce, preannounce_media_id
        )
        await self.async_start_conversation(announcement)

    @override
    async def async_start_conversation(
        self, start_announcement: AssistSatelliteAnnouncement
    ) -> None:
        """Start the conversation; the assistant says the message first, in its own voice."""
        prompt, self._extra_system_prompt = self._extra_system_prompt, None
        await self._play(await self._clips(start_announcement))
        message = start_announcement.message
        persona = self.session.settings.instructions
        instructions = "\n\n".join(part for part in (persona, prompt) if part) if prompt else None
        await self.session.async_start(instructions, message or None, greet=bool(message))

    @override
    async def async_internal_ask_question(
        self,
        question: str | None = None,
        question_media_id: str | None = None,
        preannounce: bool = True,
        preannounce_media_id: str = PREANNOUNCE_URL,
        answers: list[dict[str, Any]] | None = None,
    ) -> AssistSatelliteAnswer | None:
        """Ask, then match the user's transcribed reply against the answers, as the base does.

        The reply is the Realtime model's transcription of what the user said next; the
        conversation ends once it is in (the model's own answer to it is cut off).
        """
        if not self.session.settings.transcription_model:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="question_needs_transcription"
            )
        announcement = await self._announcement(
            question, question_media_id, preannounce, preannounce_media_id
        )
        async with async_next_user_reply(self.session) as reply:
            await self.async_start_conversation(announcement)
            text = await reply
        if self.session.state.active:
            with suppress(HomeAssistantError):  # it may have ended meanwhile
                await self.session.async_end()
        if text is None:
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="no_reply")
        if not answers:
            return AssistSatelliteAnswer(id=None, sentence=text)
        return self._question_response_to_answer(text, answers)

    # --- Helpers -----------------------------------------------------------------------------

    async def _announcement(
        self,
        message: str | None,
        media_id: str | None,
        preannounce: bool,
        preannounce_media_id: str,
    ) -> AssistSatelliteAnnouncement:
        """Resolve the media ids to URLs; a message needs no text-to-speech here."""
        source: Literal["url", "media_id", "tts"] = "tts"  # the box's own voice
        url = ""
        if media_id:
            source = "media_id" if media_id.startswith("media-source://") else "url"
            url = await async_resolve_media_id(self.hass, media_id)
        chime = None
        if preannounce:
            chime = await async_resolve_media_id(self.hass, preannounce_media_id)
        return AssistSatelliteAnnouncement(
            message=message or "",
            media_id=url,
            original_media_id=media_id or "",
            tts_token=None,
            media_id_source=source,
            preannounce_media_id=chime,
        )

    async def _clips(self, announcement: AssistSatelliteAnnouncement) -> list[Clip]:
        """Fetch and decode what plays before anything is said: the chime, then the media.

        All of it first, so that media which cannot be played leaves the speaker silent. The
        chime is left out while a conversation runs (it is not interrupted); the media when
        there is a message (the box says it instead).
        """
        urls = []
        if announcement.preannounce_media_id and not self.session.state.active:
            urls.append(announcement.preannounce_media_id)
        if announcement.media_id and not announcement.message:
            urls.append(announcement.media_id)
        return [await async_load_clip(self.hass, url) for url in urls]

    async def _play(self, clips: list[Clip]) -> None:
        """Play clips on the box's speaker, one after the other, showing `responding`."""
        if not clips:
            return
        self._playing_media = True
        self._set_state(AssistSatelliteState.RESPONDING)
        try:
            for clip in clips:
                await self.session.async_play_clip(clip)
        finally:
            self._playing_media = False
            self._on_state(self.session.state)
