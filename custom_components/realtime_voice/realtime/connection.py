"""One OpenAI Realtime session over WebRTC: the aiortc peer, SDP over HTTP, the event channel.

The caller owns the microphone track it hands in and the aiohttp session; the connection owns
the peer and closes it on every path. aiortc camelCase stays inside this module.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
import json
import logging
import time
from typing import Final, Self

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

from .client_events import (
    function_call_output,
    output_audio_buffer_clear,
    response_cancel,
    response_create,
    session_update,
    user_text,
)
from .errors import ConnectError, NotConnectedError, ProtocolError, RealtimeError
from .events import (
    ErrorEvent,
    OutputAudioCleared,
    OutputAudioStarted,
    OutputAudioStopped,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionUpdated,
    parse_server_event,
)
from .http import RealtimeHttp
from .jitter import PacketHandler, play_audio_on_arrival
from .liveness import PeerWatchdog
from .responses import ResponseRequest, ResponseTracker
from .session_config import JsonObject, SessionConfig

_LOGGER = logging.getLogger(__name__)

CHANNEL_LABEL: Final = "oai-events"
_SENT_EVENTS_REMEMBERED: Final = 256
_RECEIVED_EVENTS_REMEMBERED: Final = 256


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
    """Nothing at all from the peer for this long (no RTP, RTCP or event) means it is gone.

    A peer that is silent between replies still sends RTCP reports about our microphone's
    stream every second or so; only a lost network stops those too.
    """


type EventHandler = Callable[[ServerEvent], None]
type ClosedHandler = Callable[[CloseReason, str], None]


class RealtimeConnection:
    """A live Realtime call: send events, receive typed events, close once."""

    def __init__(
        self,
        http: RealtimeHttp,
        *,
        on_event: EventHandler,
        on_closed: ClosedHandler,
        timeouts: Timeouts,
        ice_servers: tuple[str, ...],
    ) -> None:
        """Prepare the peer; open() does the rest."""
        self._http = http
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
        self._watchdog: PeerWatchdog | None = None
        self._sent: OrderedDict[str, str] = OrderedDict()
        self._received: OrderedDict[str, None] = OrderedDict()
        self._session_updates: dict[str, asyncio.Future[JsonObject]] = {}
        self._responses = ResponseTracker()
        self._wire_callbacks()

    @classmethod
    async def open(
        cls,
        http: aiohttp.ClientSession | RealtimeHttp,
        *,
        base_url: str = "",
        api_key: str = "",
        session: SessionConfig,
        audio_track: MediaStreamTrack,
        on_event: EventHandler,
        on_closed: ClosedHandler,
        on_audio: PacketHandler | None = None,
        timeouts: Timeouts | None = None,
        ice_servers: tuple[str, ...] = (),
    ) -> Self:
        """Create the call and return once the peer is connected and the channel open.

        With on_audio, the assistant's Opus packets go to it as they come in order (jitter.py
        says why), and remote_audio only ends; without, remote_audio carries decoded frames.
        """
        if isinstance(http, aiohttp.ClientSession):
            http = RealtimeHttp(http, base_url, api_key, (timeouts or Timeouts()).http)
        connection = cls(
            http,
            on_event=on_event,
            on_closed=on_closed,
            timeouts=timeouts or Timeouts(),
            ice_servers=ice_servers,
        )
        try:
            await connection._connect(session, audio_track, on_audio)
        except BaseException:
            await connection._teardown()
            raise
        return connection

    @property
    def busy(self) -> bool:
        """Return whether a response is requested, running or queued, or audio is streaming."""
        return self._responses.busy

    @property
    def is_closed(self) -> bool:
        """Return whether the connection has ended."""
        return self._closing

    def spoke(self, response_id: str) -> bool:
        """Return whether the response produced audio."""
        return self._responses.spoke(response_id)

    async def wait_quiet(self, seconds: float) -> bool:
        """Wait, at most seconds, until no response runs or waits and no audio streams."""
        return await self._responses.wait_quiet(seconds)

    def _send(self, event: JsonObject) -> str:
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
        event_id = self._send(session_update(config))
        self._session_updates[event_id] = future
        try:
            async with asyncio.timeout(self._timeouts.channel):
                return await future
        except TimeoutError as err:
            raise ConnectError("the session update was not acknowledged") from err
        finally:
            self._session_updates.pop(event_id, None)

    def create_response(self, request: ResponseRequest | None = None) -> None:
        """Ask for a response now, or right after the running one is done."""
        if (to_send := self._responses.request(request or ResponseRequest())) is not None:
            self._send(response_create(to_send))

    def cancel_response(self) -> bool:
        """Cancel the running response and drop the queued ones; return whether one ran."""
        if not self._responses.cancel():
            return False
        self._send(response_cancel())
        return True

    def clear_output_audio(self) -> None:
        """Drop the assistant's audio the server has not streamed yet (WebRTC only)."""
        self._send(output_audio_buffer_clear())

    def interrupt(self) -> None:
        """Stop the assistant at once: cancel its response and cut the audio still streaming.

        What OpenAI documents for WebRTC (and its Agents SDK does): `response.cancel`, then
        `output_audio_buffer.clear`; the server truncates the item to what was played. When
        its own VAD already interrupted the response, the cancel is refused as not active
        (harmless) and the clear is answered with `output_audio_buffer.cleared` again.
        """
        self.cancel_response()
        self.clear_output_audio()

    def add_user_text(self, text: str) -> None:
        """Add a text message of the user's to the conversation."""
        self._send(user_text(text))

    def send_function_output(self, call_id: str, output: str) -> None:
        """Give the model the result of its function call."""
        self._send(function_call_output(call_id, output))

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

    async def _connect(
        self, session: SessionConfig, audio_track: MediaStreamTrack, on_audio: PacketHandler | None
    ) -> None:
        """Offer, post, answer, then wait for ICE/DTLS and for the channel."""
        self._pc.addTrack(audio_track)
        play_audio_on_arrival(self._pc, on_audio)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        call = await self._http.create_call(self._pc.localDescription.sdp, session)
        self.call_id = call.call_id
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(call.answer, "answer"))
        except (ValueError, AssertionError, OperationError) as err:
            # aiortc's SDP parser asserts on malformed lines; no common codec is OperationError.
            raise ProtocolError(f"the server's SDP answer is invalid: {err}") from err
        await self._wait(self._connected, self._timeouts.connect, "the WebRTC peer to connect")
        await self._wait(self._channel_open, self._timeouts.channel, "the event channel to open")
        if self.remote_audio is None:
            raise ProtocolError("the server's answer has no audio track")
        self._watchdog = PeerWatchdog(self._pc, self._timeouts.dead_peer, self._on_peer_lost)

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
        if self._watchdog is not None:
            self._watchdog.heard()
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
        if (delivered := self._track(event)) is None:
            return
        try:
            self._on_event(delivered)
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

    def _track(self, event: ServerEvent) -> ServerEvent | None:
        """Keep the bookkeeping current; return the event for the owner, or None to keep it."""
        match event:
            case ResponseCreated():
                self._responses.created(event.response_id)
            case ResponseDone():
                self._send_next(self._responses.done(event.response_id))
            case OutputAudioStarted():
                self._responses.audio_started(event.response_id)
            case OutputAudioStopped() | OutputAudioCleared():
                self._responses.audio_ended()
            case SessionUpdated():
                for future in self._session_updates.values():
                    if not future.done():
                        future.set_result(event.session)
                        break
            case ErrorEvent():
                return self._on_error(event)
        return event

    def _on_error(self, event: ErrorEvent) -> ErrorEvent | None:
        """Match an error to the client event that caused it."""
        sent_type = self._sent.get(event.client_event_id or "")
        event = replace(event, client_event_type=sent_type)
        if sent_type == "response.create":
            server_busy = event.code == "conversation_already_has_active_response"
            self._send_next(self._responses.refused(server_busy=server_busy))
            if server_busy:
                # The server's VAD started a response first: ours waits for it, whole.
                _LOGGER.debug("response.create deferred: a response is already active")
                return None
        future = self._session_updates.get(event.client_event_id or "")
        if future is not None and not future.done():
            future.set_exception(ProtocolError(event.message, code=event.code))
        if event.code == "session_expired":
            self._close_soon(CloseReason.SESSION_EXPIRED, event.message)
        return event

    def _send_next(self, request: ResponseRequest | None) -> None:
        """Send the queued response the tracker let go, unless the call is ending."""
        if request is not None and not self._closing:
            self._send(response_create(request))

    # --- Ending ----------------------------------------------------------------------------

    def _close_soon(self, reason: CloseReason, detail: str) -> None:
        """Start closing from a callback, where nothing can be awaited."""
        if self._closing or self._close_task is not None:
            return
        self._close_task = asyncio.get_running_loop().create_task(
            self.close(reason, detail), name="realtime connection close"
        )

    def _on_peer_lost(self, quiet: float) -> None:
        self._close_soon(CloseReason.NETWORK_LOST, f"nothing from the peer for {quiet:.0f} s")

    async def _teardown(self) -> None:
        """Stop the watchdog, close the peer, then hang up, each bounded.

        The peer closes first, in one step that also ends the channel: a server may close DTLS
        as soon as it gets the hang-up (pion does), and a channel closed on its own after that
        would send its stream reset in a task of aiortc's that fails unseen.
        """
        self._closing = True
        if self._watchdog is not None:
            await self._watchdog.stop()
        for future in self._session_updates.values():
            if not future.done():
                future.set_exception(NotConnectedError("the connection closed"))
        self._responses.reset()  # whoever waits for quiet waits no longer
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
        try:
            await self._http.hang_up(self.call_id)
        except RealtimeError as err:
            _LOGGER.debug("Hang-up of %s failed: %s", self.call_id, err)
