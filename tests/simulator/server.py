"""The simulator's HTTP side: OpenAI's Realtime WebRTC endpoints on 127.0.0.1, and `Simulator`.

Routes: `POST /v1/realtime/calls` (multipart `sdp` + `session`, or raw `application/sdp`),
`POST /v1/realtime/calls/{id}/hangup`, `POST /v1/realtime/client_secrets`, `GET /v1/models`, and
the retired beta `POST /v1/realtime`. Errors use OpenAI's envelope; every answer carries CORS
headers so that browser clients work as against api.openai.com.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
import json
import logging
import time
from typing import Final

from aiohttp import web

from .call import SimulatedCall
from .events import (
    MODEL,
    JsonObject,
    check_model_support,
    check_session,
    default_session,
    error_body,
    merge_session,
    new_hex_id,
    new_id,
)
from .faults import Faults
from .script import DEFAULT_USER_TRANSCRIPT, Turn
from .voice import Voice, VoiceKind

_LOGGER = logging.getLogger(__name__)

DEFAULT_API_KEY: Final = "sk-test-simulator"
DEFAULT_PORT: Final = 8765
RETIREMENT: Final = "2027-01-19"
"""When gpt-realtime and gpt-realtime-mini shut down (research notes s2-anchors-refresh §2.1)."""
MODELS: Final[dict[str, str | None]] = {
    "gpt-realtime-2.1": None,
    "gpt-realtime-2.1-mini": None,
    "gpt-realtime-2": None,
    "gpt-realtime-1.5": None,
    "gpt-realtime": RETIREMENT,
    "gpt-realtime-2025-08-28": RETIREMENT,
    "gpt-realtime-mini": RETIREMENT,
    "gpt-realtime-mini-2025-10-06": RETIREMENT,
    "gpt-4o-mini-transcribe": None,
    "gpt-4o": None,
    "whisper-1": None,
}
"""What `GET /v1/models` lists, with each model's shutdown date (None: none announced)."""
SESSION_MAX_SECONDS: Final = 3600
_LIST_CREATED: Final = 1780000000
_SECRET_DEFAULT_SECONDS: Final = 600
_SECRET_SECONDS_RANGE: Final = range(10, 7201)
_CORS_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location",
}
_PREFLIGHT_HEADERS: Final = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "authorization, content-type, x-openai-agents-sdk",
    "Access-Control-Max-Age": "600",
}
_ERROR_MESSAGES: Final = {
    "invalid_api_key": (
        "invalid_request_error",
        (
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        ),
    ),
    "insufficient_quota": (
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "rate_limit_exceeded": (
        "requests",
        "Rate limit reached for requests. Please try again in 20ms.",
    ),
    "invalid_offer": (
        "invalid_request_error",
        "Invalid SDP offer. Please try again with a WHIP-compliant offer.",
    ),
    "beta_api_shape_disabled": (
        "invalid_request_error",
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
    ),
    "server_error": ("server_error", "The server had an error while processing your request."),
}

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An HTTP error in OpenAI's envelope."""

    def __init__(
        self, status: int, code: str, message: str | None = None, param: str | None = None
    ) -> None:
        kind, default_message = _ERROR_MESSAGES.get(code, ("invalid_request_error", code))
        super().__init__(message or default_message)
        self.status = status
        self.body = error_body(code, message or default_message, param=param, kind=kind)


class Simulator:
    """A local stand-in for OpenAI's Realtime WebRTC endpoint."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        voice: VoiceKind = "speech",
        user_transcript: str = DEFAULT_USER_TRANSCRIPT,
        allow_invalid_client_events: bool = False,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.faults = Faults()
        """Switches read when the next call is created (each call copies them)."""
        self.user_transcript = user_transcript
        self.allow_invalid_client_events = allow_invalid_client_events
        """Set by tests that send invalid client events on purpose (the fixture allows them)."""
        self.models: dict[str, str | None] = dict(MODELS)
        """The account's models and their shutdown dates; a test may change them."""
        self.calls: list[SimulatedCall] = []
        self.client_secrets: dict[str, JsonObject] = {}
        self._voice = Voice(voice)
        self._turns: deque[Turn] = deque()
        self._runner: web.AppRunner | None = None
        self._new_call = asyncio.Event()
        self._calls_returned = 0
        self._stopping = asyncio.Event()
        self._hangups: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        """Return the URL the API lives under, e.g. `http://127.0.0.1:41234`."""
        return f"http://{self.host}:{self.port}"

    def script(self, *turns: Turn) -> None:
        """Queue what the model does on its next turns, across the next calls."""
        self._turns.extend(turns)

    async def start(self) -> None:
        """Listen on host:port (port 0: the OS picks one; `port` then holds it)."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/realtime/calls", self._post_call)
        app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self._hangup)
        app.router.add_post("/v1/realtime/client_secrets", self._client_secret)
        app.router.add_post("/v1/realtime", self._beta)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close every peer and the server; nothing is left running."""
        self._stopping.set()
        await asyncio.gather(*(call.close() for call in self.calls))
        await asyncio.gather(*self._hangups, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for_call(self, timeout: float = 5.0) -> SimulatedCall:
        """Return the next call not returned before, waiting for it if needed."""
        async with asyncio.timeout(timeout):
            while len(self.calls) <= self._calls_returned:
                self._new_call.clear()
                await self._new_call.wait()
        self._calls_returned += 1
        return self.calls[self._calls_returned - 1]

    @property
    def invalid_client_events(self) -> list[tuple[SimulatedCall, str]]:
        """Return every invalid client event of every call, with why it was refused."""
        return [
            (call, f"{bad.problem.code}: {bad.problem.message} in {bad.raw}")
            for call in self.calls
            for bad in call.invalid_client_events
        ]

    # --- HTTP ----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer CORS preflights, wrap errors in OpenAI's envelope, add CORS headers."""
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={**_CORS_HEADERS, **_PREFLIGHT_HEADERS})
        try:
            response = await handler(request)
        except ApiError as err:
            response = web.json_response(err.body, status=err.status)
        except web.HTTPException as err:
            body = error_body("not_found" if err.status == 404 else "invalid_request", err.reason)
            response = web.json_response(body, status=err.status)
        response.headers.update(_CORS_HEADERS)
        return response

    def _bearer(self, request: web.Request) -> str:
        """Return the bearer token, or raise 401."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "missing_api_key",
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        return token

    def _require_standard_key(self, request: web.Request) -> None:
        """Raise 401 unless the request carries the standard API key."""
        if self._bearer(request) != self.api_key:
            raise ApiError(401, "invalid_api_key")

    def _secret_session(self, token: str) -> JsonObject | None:
        """Return the session of a valid ephemeral key, or None for a standard key."""
        if token == self.api_key:
            return None
        secret = self.client_secrets.get(token)
        if secret is None or secret["expires_at"] < time.time():
            raise ApiError(401, "invalid_api_key")
        session: JsonObject = secret["session"]
        return session

    async def _post_call(self, request: web.Request) -> web.Response:
        """Answer an SDP offer with a new call."""
        if self.faults.hang_calls:
            await self._stopping.wait()
            raise ApiError(503, "server_error")
        if self.faults.http_status is not None:
            status, code = self.faults.http_status
            raise ApiError(status, code)
        secret_session = self._secret_session(self._bearer(request))
        offer, session_update = await _read_offer(request)
        session = self._new_session(secret_session, session_update)
        self._check_model(session)
        call = SimulatedCall(
            session=session,
            faults=self.faults,
            voice=self._voice,
            shared_turns=self._turns,
            user_transcript=self.user_transcript,
            model_available=session["model"] in self.models,
        )
        try:
            answer = await call.answer(offer)
        except (ValueError, AssertionError, KeyError) as err:
            _LOGGER.debug("Invalid offer: %s", err)
            await call.close()
            raise ApiError(400, "invalid_offer") from err
        self.calls.append(call)
        self._new_call.set()
        headers = {
            "Content-Type": "application/sdp",
            "Location": f"/v1/realtime/calls/{call.call_id}",
        }
        return web.Response(status=201, body=answer.encode(), headers=headers)

    def _check_model(self, session: JsonObject) -> None:
        """Refuse a listed model that is not a Realtime one, and what the model lacks.

        A model the account does not list is let through: its responses fail instead, as
        OpenAI's do (see SimulatedCall.model_available).
        """
        model = str(session["model"])
        if model in self.models and "realtime" not in model:
            raise ApiError(
                400,
                "invalid_model",
                f'Model "{model}" is not supported in realtime mode.',
                "session.model",
            )
        if (problem := check_model_support(session)) is not None:
            raise ApiError(400, problem.code, problem.message, problem.param)

    def _new_session(self, base: JsonObject | None, update: JsonObject | None) -> JsonObject:
        """Return a fresh session's effective config."""
        session = default_session(new_id("sess"), int(time.time()) + SESSION_MAX_SECONDS)
        for layer in (base, update):
            if layer:
                session = merge_session(
                    session,
                    {k: v for k, v in layer.items() if k not in {"id", "object", "expires_at"}},
                )
        return session

    async def _hangup(self, request: web.Request) -> web.Response:
        """End a call: 200 now, the peer closes right after."""
        self._require_standard_key(request)
        call_id = request.match_info["call_id"]
        call = next((call for call in self.calls if call.call_id == call_id), None)
        if call is None:
            raise ApiError(404, "call_not_found", f"Call not found: {call_id}", "call_id")
        call.hung_up = True
        if call.faults.dtls_closed_on_hangup:
            await call.close_dtls()
        task = asyncio.create_task(call.close(), name=f"simulator hangup {call_id}")
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)
        return web.json_response({})

    async def _client_secret(self, request: web.Request) -> web.Response:
        """Mint an ephemeral `ek_` key for a session config."""
        self._require_standard_key(request)
        body = await _read_json(request)
        seconds = body.get("expires_after", {}).get("seconds", _SECRET_DEFAULT_SECONDS)
        if not isinstance(seconds, int) or seconds not in _SECRET_SECONDS_RANGE:
            raise ApiError(
                400,
                "integer_out_of_range",
                "Invalid 'expires_after.seconds': must be between 10 and 7200.",
                "expires_after.seconds",
            )
        requested = body.get("session", {"type": "realtime"})
        if (problem := check_session(requested)) is not None:
            raise ApiError(400, problem.code, problem.message, problem.param)
        session = self._new_session(None, requested)
        session["expires_at"] = 0
        value = new_hex_id("ek")
        secret = {"value": value, "expires_at": int(time.time()) + seconds, "session": session}
        self.client_secrets[value] = secret
        return web.json_response(secret)

    async def _beta(self, _request: web.Request) -> web.Response:
        """Refuse the beta WebRTC path: it was switched off in May 2026."""
        raise ApiError(400, "beta_api_shape_disabled")

    async def _models(self, request: web.Request) -> web.Response:
        """List models: how clients validate a key."""
        self._require_standard_key(request)
        data = [
            _model(model, index, shutdown)
            for index, (model, shutdown) in enumerate(self.models.items())
        ]
        return web.json_response({"object": "list", "data": data})


def _model(model: str, index: int, shutdown: str | None) -> JsonObject:
    """Return one entry of the model list, checked against the SDK's `Model`."""
    entry: JsonObject = {
        "id": model,
        "object": "model",
        "created": _LIST_CREATED - index * 86400,  # the simulator's own: newest listed first
        "owned_by": "system",
    }
    if shutdown is not None:
        entry["shutdown_date"] = shutdown
    MODEL.validate_python(entry)
    return entry


async def _read_offer(request: web.Request) -> tuple[str, JsonObject | None]:
    """Return the SDP offer and the session config of a `/calls` request."""
    if request.content_type == "application/sdp":
        offer = await request.text()
        session = None
    elif request.content_type == "multipart/form-data":
        parts: dict[str, str] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name is not None and hasattr(part, "text"):
                parts[part.name] = await part.text()
        offer = parts.get("sdp", "")
        session = _parse_session_part(parts.get("session"))
    else:
        raise ApiError(
            400,
            "unsupported_content_type",
            f"Unsupported content type: '{request.content_type}'. This API method only accepts "
            "'application/sdp' and 'multipart/form-data' requests.",
        )
    if not offer.startswith("v=0") or "m=audio" not in offer:
        raise ApiError(400, "invalid_offer")
    return offer, session


def _parse_session_part(text: str | None) -> JsonObject | None:
    """Parse and check the `session` part of a multipart offer."""
    if text is None:
        return None
    try:
        session = json.loads(text)
    except json.JSONDecodeError as err:
        raise ApiError(
            400, "invalid_json", "The 'session' part is not valid JSON.", "session"
        ) from err
    if (problem := check_session(session)) is not None:
        raise ApiError(400, problem.code, problem.message, problem.param)
    result: JsonObject = session
    return result


async def _read_json(request: web.Request) -> JsonObject:
    """Return a JSON object body (an empty body is `{}`)."""
    if not await request.read():
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as err:
        raise ApiError(
            400, "invalid_json", "We could not parse the JSON body of your request."
        ) from err
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_type", "The request body must be a JSON object.")
    return body
