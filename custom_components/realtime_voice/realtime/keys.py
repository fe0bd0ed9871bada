"""Check an API key and list the models it may use: `GET /v1/models`, cheap and free."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

import aiohttp

from .connection import http_error
from .errors import ConnectError, ProtocolError


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model the key may use, as `GET /v1/models` lists it."""

    id: str
    created: int = 0
    """Unix time the model was published."""
    shutdown_date: date | None = None
    """When OpenAI turns the model off, once announced."""


async def check_api_key(
    http: aiohttp.ClientSession, base_url: str, api_key: str, seconds: float = 10.0
) -> tuple[ModelInfo, ...]:
    """Return the models the key may use; raise AuthenticationError, ConnectError, ..."""
    url = f"{base_url.rstrip('/')}/v1/models"
    try:
        async with (
            asyncio.timeout(seconds),
            http.get(url, headers={"Authorization": f"Bearer {api_key}"}) as response,
        ):
            if response.status != 200:  # noqa: PLR2004
                raise http_error(response.status, await response.text())
            body = await response.json(content_type=None)
    except TimeoutError as err:
        raise ConnectError(f"{url} did not answer within {seconds:g} s") from err
    except aiohttp.ClientError as err:
        raise ConnectError(f"cannot reach {url}: {err}") from err
    except ValueError as err:
        raise ProtocolError(f"{url} did not answer with JSON") from err
    return parse_models(body)


def parse_models(body: Any) -> tuple[ModelInfo, ...]:
    """Parse the model list; entries without an id are skipped, a bad date is no date."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return ()
    return tuple(
        ModelInfo(
            id=entry["id"],
            created=created if isinstance(created := entry.get("created"), int) else 0,
            shutdown_date=_date(entry.get("shutdown_date")),
        )
        for entry in data
        if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    )


def _date(value: object) -> date | None:
    """Return an ISO date (`2027-01-19`, or a timestamp's date part), or None."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
