"""Check an API key before a call is made: `GET /v1/models`, cheap and free."""

from __future__ import annotations

import asyncio

import aiohttp

from .connection import http_error
from .errors import ConnectError


async def check_api_key(
    http: aiohttp.ClientSession, base_url: str, api_key: str, seconds: float = 10.0
) -> None:
    """Return if the key is accepted; raise AuthenticationError, ConnectError, ... if not."""
    url = f"{base_url.rstrip('/')}/v1/models"
    try:
        async with (
            asyncio.timeout(seconds),
            http.get(url, headers={"Authorization": f"Bearer {api_key}"}) as response,
        ):
            if response.status == 200:  # noqa: PLR2004
                return
            raise http_error(response.status, await response.text())
    except TimeoutError as err:
        raise ConnectError(f"{url} did not answer within {seconds:g} s") from err
    except aiohttp.ClientError as err:
        raise ConnectError(f"cannot reach {url}: {err}") from err
