"""One OpenAI Realtime session over WebRTC: the aiortc peer, SDP over HTTP, the event channel.

The caller owns the microphone track it hands in and the aiohttp session; the connection owns
the peer and closes it on every path. aiortc camelCase stays inside this module.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
import json
import logging
import time
from typing import Any, Final, Self

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError

from .errors import (
    MODEL_ERROR_CODES,
    AuthenticationError,
    ConnectError,
    ModelUnavailableError,
    NotConnectedError,
    ProtocolError,
    QuotaError,
    RateLimitError,
    RealtimeError,
)
from .events import (
    ErrorEvent,
    JsonObject,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionConfig,
    SessionUpdated,
    output_audio_buffer_clear,
    parse_server_event,
    response_cancel,
    response_create,
    session_update,
)
from .jitter import play_audio_on_arrival

_LOGGER = logging.getLogger(__name__)

CHANNEL_LABEL: Final = "oai-events"
_SENT_EVENTS_REMEMBERED: Final = 256
_RECEIVED_EVENTS_REMEMBERED: Final = 256
_HANGUP_TIMEOUT: Final = 2.0
_WATCHDOG_INTERVAL: Final = 1.0


class CloseReason(StrEnum):
    """Why a connection ended."""

    CLIENT = "client"
    REMOTE_HANGUP = "remote_hangup"
    NETWORK_LOST = "network_lost"
    SESSION_EXPIRED = "session_expired"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Bounds, in seconds, on each step that waits for the far side."""

    http: float = 10.0
    connect: float = 10.0
    """ICE and DTLS: the answer applied → connectionState `connected`."""
    channel: float = 5.0
    close: float = 5.0
    dead_peer: float = 15.0
    """No RTP and no event for this long while connected means the peer is gone."""


type EventHandler = Callable[[ServerEvent], None]
type ClosedHandler = Callable[[CloseReason, str], None]


class RealtimeConnection:
    """A live Realtime call: send events, receive typed events, close once."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        on_event: EventHandler,
        on_closed: ClosedHandler,
        timeouts: Timeouts,
        ice_servers: tuple[str, ...],
    ) -> None:
        """Prepare the peer; open() does the rest."""
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._on_event = on_event
        self._on_closed = on_closed
        self._timeouts = timeouts
        self._pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in ice_servers])
        )
        self._channel: RTCDataChannel = self._pc.createDataChannel(CHANNEL_LABEL)
        self.call_id: str | None = None
        self.remote_audio: MediaStreamTrack | None = None
        self._connected = asyncio.Event()
        self._channel_open = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._sent: OrderedDict[str, str] = OrderedDict()
        self._received: OrderedDict[str, None] = OrderedDict()
        self._session_updates: dict[str, asyncio.Future[JsonObject]] = {}
        self._response_active = False
        self._queued_responses: deque[JsonObject] = deque()
        self._last_activity = time.monotonic()
        self._wire_callbacks()

    @classmethod
    async def open(
        cls,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        session: SessionConfig,
        audio_track: MediaStreamTrack,
        on_event: EventHandler,
        on_closed: ClosedHandler,
        timeouts: Timeouts | None = None,
        ice_servers: tuple[str, ...] = (),
    ) -> Self:
        """Create the call and return once the peer is connected and the channel open."""
        connection = cls(
            http,
            base_url=base_url,
            api_key=api_key,
            on_event=on_event,
            on_closed=on_closed,
            timeouts=timeouts or Timeouts(),
            ice_servers=ice_servers,
        )
        try:
            await connection._connect(session, audio_track)
        except BaseException:
            await connection._teardown()
            raise
        return connection

    @property
    def response_active(self) -> bool:
        """Return whether a response is being created or is running."""
        return self._response_active

    @property
    def is_closed(self) -> bool:
        """Return whether the connection has ended."""
        return self._closing

    def send(self, event: JsonObject) -> str:
        """Send a client event and return its event_id."""
        if self._closing or self._channel.readyState != "open":
            raise NotConnectedError("the Realtime data channel is not open")
        event_id = f"evt_{time.monotonic_ns():x}_{len(self._sent)}"
        self._sent[event_id] = str(event.get("type"))
        while len(self._sent) > _SENT_EVENTS_REMEMBERED:
            self._sent.popitem(last=False)
        self._channel.send(json.dumps({**event, "event_id": event_id}))
        _LOGGER.debug("Sent %s (%s)", event.get("type"), event_id)
        return event_id

    async def update_session(self, config: SessionConfig) -> JsonObject:
        """Send `session.update`; return the effective session or raise ProtocolError."""
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        event_id = self.send(session_update(config))
        self._session_updates[event_id] = future
        try:
            async with asyncio.timeout(self._timeouts.channel):
                return await future
        except TimeoutError as err:
            raise ConnectError("the session update was not acknowledged") from err
        finally:
            self._session_updates.pop(event_id, None)

    def create_response(
        self,
        instructions: str | None = None,
        *,
        tools_allowed: bool = True,
        max_output_tokens: int | None = None,
    ) -> None:
        """Ask for a response now, or right after the active one is done."""
        event = response_create(
            instructions, tools_allowed=tools_allowed, max_output_tokens=max_output_tokens
        )
        if self._response_active:
            self._queued_responses.append(event)
            return
        self._response_active = True
        self.send(event)

    def cancel_response(self) -> bool:
        """Cancel the active response and the ones queued; return whether one was active."""
        self._queued_responses.clear()
        if not self._response_active:
            return False
        self.send(response_cancel())
        return True

    def interrupt(self) -> None:
        """Stop the assistant at once: cancel its response and cut the audio still streaming.

        What OpenAI documents for WebRTC (and its Agents SDK does): `response.cancel`, then
        `output_audio_buffer.clear`; the server truncates the item to what was played. When
        its own VAD already interrupted the response, the cancel is refused as not active
        (harmless) and the clear is answered with `output_audio_buffer.cleared` again.
        """
        self.cancel_response()
        self.send(output_audio_buffer_clear())

    async def close(self, reason: CloseReason = CloseReason.CLIENT, detail: str = "") -> None:
        """Hang up and release the peer; idempotent and bounded in time."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            await self._teardown()
        finally:
            self._closed.set()
            _LOGGER.debug("Realtime call %s closed: %s %s", self.call_id, reason, detail)
            self._on_closed(reason, detail)

    # --- Opening -------------------------------------------------------------------------

    async def _connect(self, session: SessionConfig, audio_track: MediaStreamTrack) -> None:
        """Offer, post, answer, then wait for ICE/DTLS and for the channel."""
        self._pc.addTrack(audio_track)
        play_audio_on_arrival(self._pc)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        answer = await self._post_offer(self._pc.localDescription.sdp, session)
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        except (ValueError, AssertionError, OperationError) as err:
            # aiortc's SDP parser asserts on malformed lines; no common codec is OperationError.
            raise ProtocolError(f"the server's SDP answer is invalid: {err}") from err
        await self._wait(self._connected, self._timeouts.connect, "the WebRTC peer to connect")
        await self._wait(self._channel_open, self._timeouts.channel, "the event channel to open")
        if self.remote_audio is None:
            raise ProtocolError("the server's answer has no audio track")
        self._last_activity = time.monotonic()
        self._watchdog = asyncio.create_task(self._watch_peer(), name="realtime peer watchdog")

    async def _wait(self, event: asyncio.Event, seconds: float, what: str) -> None:
        """Wait for a step; fail fast if the peer fails meanwhile."""
        closed = asyncio.ensure_future(self._closed.wait())
        step = asyncio.ensure_future(event.wait())
        try:
            async with asyncio.timeout(seconds):
                await asyncio.wait((closed, step), return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError as err:
            raise ConnectError(f"timed out after {seconds:g} s waiting for {what}") from err
        finally:
            closed.cancel()
            step.cancel()
        if not event.is_set():
            raise ConnectError(f"the connection failed while waiting for {what}")

    async def _post_offer(self, sdp: str, session: SessionConfig) -> str:
        """POST the offer to /v1/realtime/calls and return the SDP answer."""
        url = f"{self._base_url}/v1/realtime/calls"
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/sdp"}
        body: aiohttp.FormData | str
        if self._api_key.startswith("ek_"):
            # An ephemeral key carries its session: OpenAI takes raw SDP with it.
            body, headers["Content-Type"] = sdp, "application/sdp"
        else:
            body = aiohttp.FormData()
            body.add_field("sdp", sdp, content_type="application/sdp")
            body.add_field(
                "session", json.dumps(session.to_call_request()), content_type="application/json"
            )
        try:
            async with (
                asyncio.timeout(self._timeouts.http),
                self._http.post(url, data=body, headers=headers) as response,
            ):
                text = await response.text()
                if response.status not in (200, 201):
                    raise http_error(response.status, text)
                self.call_id = response.headers.get("Location", "").rsplit("/", 1)[-1] or None
        except TimeoutError as err:
            raise ConnectError(f"{url} did not answer within {self._timeouts.http:g} s") from err
        except aiohttp.ClientError as err:
            raise ConnectError(f"cannot reach {url}: {err}") from err
        if not text.startswith("v=0"):
            raise ProtocolError("the server's answer is not SDP")
        return text

    # --- Events from aiortc ----------------------------------------------------------------

    def _wire_callbacks(self) -> None:
        """Subscribe to the peer and the channel."""
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._pc.on("track", self._on_track)
        self._channel.on("open", self._channel_open.set)
        self._channel.on("message", self._on_message)
        self._channel.on("close", self._on_channel_closed)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self.remote_audio = track

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        _LOGGER.debug("Peer connection state: %s", state)
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._close_soon(CloseReason.NETWORK_LOST, f"peer connection {state}")

    def _on_channel_closed(self) -> None:
        self._close_soon(CloseReason.REMOTE_HANGUP, "the event channel was closed by the server")

    def _on_message(self, message: str | bytes) -> None:
        """Parse one channel message and hand it on; bad input is logged, never raised."""
        self._last_activity = time.monotonic()
        try:
            data = json.loads(message)
        except ValueError:
            _LOGGER.warning("Dropped a malformed Realtime event: %.200r", message)
            return
        if not isinstance(data, dict):
            _LOGGER.warning("Dropped a Realtime event that is not an object: %.200r", data)
            return
        event = parse_server_event(data)
        _LOGGER.debug("Received %s", data.get("type"))
        if self._repeated(event.event_id):
            _LOGGER.debug("Dropped a repeated Realtime event %s", event.event_id)
            return
        if not self._track(event):
            return
        try:
            self._on_event(event)
        except Exception:
            _LOGGER.exception("Error handling Realtime event %s", data.get("type"))

    def _repeated(self, event_id: str) -> bool:
        """Remember a recent event id; return whether it came before (a relay may repeat)."""
        if not event_id:
            return False
        if event_id in self._received:
            return True
        self._received[event_id] = None
        while len(self._received) > _RECEIVED_EVENTS_REMEMBERED:
            self._received.popitem(last=False)
        return False

    def _track(self, event: ServerEvent) -> bool:
        """Keep the bookkeeping current; return False to keep the event from the owner."""
        match event:
            case ResponseCreated():
                self._response_active = True
            case ResponseDone():
                self._next_response()
            case SessionUpdated():
                for future in self._session_updates.values():
                    if not future.done():
                        future.set_result(event.session)
                        break
            case ErrorEvent():
                return self._on_error(event)
        return True

    def _on_error(self, event: ErrorEvent) -> bool:
        """Match an error to the client event that caused it."""
        sent_type = self._sent.get(event.client_event_id or "")
        object.__setattr__(event, "client_event_type", sent_type)
        if event.code == "conversation_already_has_active_response" and sent_type == (
            "response.create"
        ):
            # The server started a response of its own (VAD) first: ours waits for it to end.
            self._response_active = True
            self._queued_responses.appendleft(response_create())
            _LOGGER.debug("response.create deferred: a response is already active")
            return False
        if sent_type == "response.create":
            self._next_response()  # the refused one is over: the queued ones must not wait
        future = self._session_updates.get(event.client_event_id or "")
        if future is not None and not future.done():
            future.set_exception(ProtocolError(event.message, code=event.code))
        if event.code == "session_expired":
            self._close_soon(CloseReason.SESSION_EXPIRED, event.message)
        return True

    def _next_response(self) -> None:
        """End the active response: send the first queued response.create, if any."""
        self._response_active = False
        if self._queued_responses and not self._closing:
            self._response_active = True
            self.send(self._queued_responses.popleft())

    # --- Ending ----------------------------------------------------------------------------

    def _close_soon(self, reason: CloseReason, detail: str) -> None:
        """Start closing from a callback, where nothing can be awaited."""
        if self._closing or self._close_task is not None:
            return
        self._close_task = asyncio.get_running_loop().create_task(
            self.close(reason, detail), name="realtime connection close"
        )

    async def _watch_peer(self) -> None:
        """Close when neither RTP nor events arrived for Timeouts.dead_peer seconds.

        aiortc never reports "disconnected": a vanished peer is noticed only by ICE consent
        checks after about 30 s. OpenAI streams audio packets all the time, silence included.
        """
        packets = -1
        while not self._closing:
            await asyncio.sleep(_WATCHDOG_INTERVAL)
            received = await self._packets_received()
            if received != packets:
                packets, self._last_activity = received, max(self._last_activity, time.monotonic())
            idle = time.monotonic() - self._last_activity
            if idle > self._timeouts.dead_peer:
                self._close_soon(CloseReason.NETWORK_LOST, f"no audio or events for {idle:.0f} s")
                return

    async def _packets_received(self) -> int:
        """Return the RTP packets received so far on every receiver."""
        total = 0
        for receiver in self._pc.getReceivers():
            report = await receiver.getStats()
            total += sum(
                getattr(stats, "packetsReceived", 0)
                for stats in report.values()
                if stats.type == "inbound-rtp"
            )
        return total

    async def _teardown(self) -> None:
        """Stop the watchdog, close the peer, then hang up, each bounded.

        The peer closes first, in one step that also ends the channel: a server may close DTLS
        as soon as it gets the hang-up (pion does), and a channel closed on its own after that
        would send its stream reset in a task of aiortc's that fails unseen.
        """
        self._closing = True
        current = asyncio.current_task()
        if self._watchdog is not None and self._watchdog is not current:
            self._watchdog.cancel()
            with suppress(asyncio.CancelledError):
                await self._watchdog
        for future in self._session_updates.values():
            if not future.done():
                future.set_exception(NotConnectedError("the connection closed"))
        try:
            async with asyncio.timeout(self._timeouts.close):
                await self._pc.close()
        except TimeoutError:
            _LOGGER.warning("The WebRTC peer did not close within %s s", self._timeouts.close)
        await self._hang_up()

    async def _hang_up(self) -> None:
        """Tell the server the call is over; best effort, it ends anyway when the peer goes."""
        if self.call_id is None:
            return
        url = f"{self._base_url}/v1/realtime/calls/{self.call_id}/hangup"
        try:
            async with (
                asyncio.timeout(_HANGUP_TIMEOUT),
                self._http.post(url, headers={"Authorization": f"Bearer {self._api_key}"}),
            ):
                pass
        except (TimeoutError, aiohttp.ClientError) as err:
            _LOGGER.debug("Hang-up of %s failed: %s", self.call_id, err)


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
