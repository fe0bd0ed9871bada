"""OpenAI's HTTP side of a Realtime call: check a key, create a call, hang up.

One Bearer header, one URL join, one timeout and one mapping of HTTP errors to the client's
error types, for every request this package makes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import date
import json
from typing import Any, Final

import aiohttp

from .errors import (
    MODEL_ERROR_CODES,
    AuthenticationError,
    ConnectError,
    ModelUnavailableError,
    ProtocolError,
    QuotaError,
    RateLimitError,
    RealtimeError,
)
from .session_config import SessionConfig

HANG_UP_SECONDS: Final = 2.0
"""A hang-up is best effort: the call ends anyway once the peer is gone."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model the key may use, as `GET /v1/models` lists it."""

    id: str
    created: int = 0
    """Unix time the model was published."""
    shutdown_date: date | None = None
    """When OpenAI turns the model off, once announced."""


@dataclass(frozen=True, slots=True)
class CreatedCall:
    """The server's side of a new call: its SDP answer and the call's id (for the hang-up)."""

    answer: str
    call_id: str | None


class RealtimeHttp:
    """Requests to one OpenAI endpoint with one key."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, api_key: str, seconds: float = 10.0
    ) -> None:
        """Keep the session, endpoint and key; nothing is sent yet."""
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._seconds = seconds

    def __repr__(self) -> str:
        """Name the endpoint, never the key."""
        return f"RealtimeHttp({self._base_url!r})"

    async def list_models(self) -> tuple[ModelInfo, ...]:
        """Return the models the key may use; raise AuthenticationError, ConnectError, ..."""
        async with self._request("GET", "/v1/models") as response:
            try:
                body = await response.json(content_type=None)
            except ValueError as err:
                raise ProtocolError("the model list is not JSON") from err
        return parse_models(body)

    async def create_call(self, offer: str, session: SessionConfig) -> CreatedCall:
        """POST the SDP offer to `/v1/realtime/calls`; return the answer."""
        headers = {"Accept": "application/sdp"}
        body: aiohttp.FormData | str
        if self._api_key.startswith("ek_"):
            # An ephemeral key carries its session: OpenAI takes raw SDP with it.
            body, headers["Content-Type"] = offer, "application/sdp"
        else:
            body = aiohttp.FormData()
            body.add_field("sdp", offer, content_type="application/sdp")
            body.add_field(
                "session", json.dumps(session.to_call_request()), content_type="application/json"
            )
        async with self._request("POST", "/v1/realtime/calls", data=body, headers=headers) as r:
            answer = await r.text()
            call_id = r.headers.get("Location", "").rsplit("/", 1)[-1] or None
        if not answer.startswith("v=0"):
            raise ProtocolError("the server's answer is not SDP")
        return CreatedCall(answer, call_id)

    async def hang_up(self, call_id: str) -> None:
        """End the call on the server's side; raise RealtimeError if that failed."""
        async with self._request(
            "POST", f"/v1/realtime/calls/{call_id}/hangup", seconds=HANG_UP_SECONDS
        ):
            pass

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        *,
        seconds: float | None = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one request; yield a successful response, raise a RealtimeError otherwise."""
        url = self._base_url + path
        seconds = seconds or self._seconds
        headers = {**(headers or {}), "Authorization": f"Bearer {self._api_key}"}
        try:
            async with (
                asyncio.timeout(seconds),
                self._http.request(method, url, headers=headers, data=data) as response,
            ):
                if response.status not in (200, 201):
                    raise http_error(response.status, await response.text())
                yield response
        except TimeoutError as err:
            raise ConnectError(f"{url} did not answer within {seconds:g} s") from err
        except aiohttp.ClientError as err:
            raise ConnectError(f"cannot reach {url}: {err}") from err


async def check_api_key(
    http: aiohttp.ClientSession, base_url: str, api_key: str, seconds: float = 10.0
) -> tuple[ModelInfo, ...]:
    """Return the models the key may use: `GET /v1/models` is cheap and free."""
    return await RealtimeHttp(http, base_url, api_key, seconds).list_models()


def http_error(status: int, body: str) -> RealtimeError:
    """Map an HTTP error answer (OpenAI's error envelope) to the client's error types."""
    error: dict[str, Any] = {}
    with suppress(ValueError, AttributeError):
        error = json.loads(body).get("error") or {}
    message = str(error.get("message") or f"HTTP {status}")
    code = error.get("code")
    kind: type[RealtimeError]
    if status == 401:  # noqa: PLR2004 - HTTP statuses read best as numbers
        kind = AuthenticationError
    elif status == 429:  # noqa: PLR2004
        kind = QuotaError if code == "insufficient_quota" else RateLimitError
    elif status >= 500:  # noqa: PLR2004
        kind = ConnectError
    elif code in MODEL_ERROR_CODES:
        kind = ModelUnavailableError
    else:
        kind = ProtocolError
    return kind(message, code=code, status=status)


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
