"""An announcement's media: from the id Home Assistant gives to a clip the box's speaker plays."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import aiohttp
from homeassistant.components import assist_satellite, media_source
from homeassistant.components.assist_satellite.const import PREANNOUNCE_FILENAME, PREANNOUNCE_URL
from homeassistant.components.media_player.browse_media import async_process_play_media_url
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .audio.clip import Clip, ClipError, decode_clip
from .const import DOMAIN

MAX_MEDIA_BYTES: Final = 16 * 1024 * 1024
"""The most an announcement's media may weigh (a few minutes of MP3, one of WAV)."""
FETCH_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)

_PREANNOUNCE_FILE: Final = Path(assist_satellite.__file__).parent / PREANNOUNCE_FILENAME
"""Home Assistant's own chime, read from its package rather than fetched from its web server."""


async def async_resolve_media_id(hass: HomeAssistant, media_id: str) -> str:
    """Return the URL to fetch, as Home Assistant's satellites resolve it (signed if its own).

    Home Assistant's chime stays as it is: async_load_clip reads it from the package.
    """
    if media_id == PREANNOUNCE_URL:
        return media_id
    if media_source.is_media_source_id(media_id):
        media_id = (await media_source.async_resolve_media(hass, media_id, None)).url
    return async_process_play_media_url(hass, media_id)


async def async_load_clip(hass: HomeAssistant, url: str) -> Clip:
    """Fetch a resolved media URL and decode it for the speaker."""
    if url == PREANNOUNCE_URL:
        data = await hass.async_add_executor_job(_PREANNOUNCE_FILE.read_bytes)
    else:
        data = await _async_fetch(hass, url)
    try:
        return await hass.async_add_executor_job(decode_clip, data)
    except ClipError as err:
        raise _media_error(url, str(err)) from err


async def _async_fetch(hass: HomeAssistant, url: str) -> bytes:
    """Fetch the media, refusing what is too large to be an announcement."""
    try:
        async with async_get_clientsession(hass).get(url, timeout=FETCH_TIMEOUT) as response:
            response.raise_for_status()
            data = await response.content.read(MAX_MEDIA_BYTES + 1)
    except aiohttp.ClientResponseError as err:
        # Its text holds the whole URL: a signed one's signature stays out of the error.
        raise _media_error(url, f"HTTP {err.status} {err.message}") from err
    except (aiohttp.ClientError, TimeoutError) as err:
        raise _media_error(url, str(err) or type(err).__name__) from err
    if len(data) > MAX_MEDIA_BYTES:
        raise _media_error(url, f"larger than {MAX_MEDIA_BYTES // 1024 // 1024} MB")
    return data


def _media_error(media_id: str, message: str) -> HomeAssistantError:
    # The signature of a signed URL is left out: it grants access to the file.
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="media_unavailable",
        translation_placeholders={"media": media_id.split("?", maxsplit=1)[0], "message": message},
    )
