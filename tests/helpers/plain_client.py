"""A plain aiortc client of OpenAI's Realtime WebRTC API, for tests against the simulator.

It does what the guides do and nothing more: a peer with an outgoing audio track (silence until
a test plays a tone, speech or WAV into it), the `oai-events` data channel, the offer posted to
`/v1/realtime/calls`, and recorders of every event and of the energy of every received frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
import json
import time
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from multidict import CIMultiDictProxy

from tests.simulator.call import settle
from tests.simulator.voice import Clip, PlaybackTrack, Samples, rms

type JsonObject = dict[str, Any]
type Timestamped[T] = tuple[float, T]


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What `/v1/realtime/calls` answered."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str

    def json(self) -> JsonObject:
        """Return the body as JSON (error envelopes)."""
        body: JsonObject = json.loads(self.text)
        return body


class PlainClient:
    """An offering peer with a microphone track and the event channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.microphone = PlaybackTrack()
        self.pc.addTrack(self.microphone)
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: list[Timestamped[JsonObject]] = []
        """(monotonic time, event) of every JSON object received on the channel."""
        self.raw_messages: list[Timestamped[str]] = []
        """Every message received, parseable or not."""
        self.audio_frames: list[Timestamped[float]] = []
        """(monotonic time, RMS) of every frame received on the remote audio track."""
        self.call_id: str | None = None
        self.opened = asyncio.Event()
        self.channel_closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._peer_tasks: set[asyncio.Task[Any]] = set()
        self._http = aiohttp.ClientSession()
        self.channel.on("open", self.opened.set)
        self.channel.on("close", self._on_channel_close)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def offer(self) -> str:
        """Create the offer; aiortc gathers candidates in setLocalDescription."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def post_offer(
        self,
        base_url: str,
        api_key: str,
        *,
        session: JsonObject | None = None,
        sdp: str | None = None,
        path: str = "/v1/realtime/calls",
        timeout: float = 5.0,
    ) -> HttpAnswer:
        """Post the offer: multipart with a session config, else raw `application/sdp`."""
        offer = sdp if sdp is not None else await self.offer()
        headers = {"Authorization": f"Bearer {api_key}"}
        data: aiohttp.FormData | str
        if session is None:
            data = offer
            headers["Content-Type"] = "application/sdp"
        else:
            data = aiohttp.FormData()
            data.add_field("sdp", offer, content_type="application/sdp")
            data.add_field("session", json.dumps(session), content_type="application/json")
        async with self._http.post(
            base_url + path,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            return HttpAnswer(response.status, response.headers, await response.text())

    async def connect(
        self,
        base_url: str,
        api_key: str,
        *,
        session: JsonObject | None = None,
        wait_open: bool = True,
        timeout: float = 5.0,
    ) -> HttpAnswer:
        """Post the offer, apply the answer and (by default) wait for the channel to open."""
        answer = await self.post_offer(base_url, api_key, session=session, timeout=timeout)
        if answer.status != 201:
            raise AssertionError(f"/calls answered {answer.status}: {answer.text}")
        self.call_id = answer.headers["Location"].rsplit("/", 1)[-1]
        before = asyncio.all_tasks()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
        self._peer_tasks = asyncio.all_tasks() - before
        if wait_open:
            async with asyncio.timeout(timeout):
                await self.opened.wait()
        return answer

    def send(self, event: JsonObject) -> None:
        """Send one client event."""
        self.channel.send(json.dumps(event))

    def play(self, samples: Samples) -> Clip:
        """Play audio (48 kHz mono int16) into the microphone track."""
        return self.microphone.play(samples)

    async def wait_for_event(
        self,
        event_type: str,
        *,
        index: int = 0,
        timeout: float = 5.0,
    ) -> JsonObject:
        """Return the index-th received event of this type, waiting for it if needed."""

        def probe() -> JsonObject | None:
            matching = [event for _, event in self.events if event.get("type") == event_type]
            return matching[index] if len(matching) > index else None

        return await self.wait_until(probe, timeout=timeout)

    def event_time(self, event: JsonObject) -> float:
        """Return when an event (as returned by wait_for_event) arrived."""
        return next(at for at, seen in self.events if seen is event)

    def types(self) -> list[str]:
        """Return the types of all received events, in order."""
        return [event["type"] for _, event in self.events]

    def energy_between(self, start: float, end: float) -> list[float]:
        """Return the RMS of every frame received between two monotonic times."""
        return [value for at, value in self.audio_frames if start <= at <= end]

    async def wait_until[T](
        self,
        probe: Callable[[], T | None],
        *,
        timeout: float = 5.0,
    ) -> T:
        """Wait until probe (re-run after every message and frame) returns something."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if (result := probe()) is not None:
                    return result
                await changed.wait()

    async def close(self) -> None:
        """Close the peer and the HTTP session; nothing is left running."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.microphone.stop()
        await self.pc.close()
        await settle(self._peer_tasks)
        await self._http.close()

    def _on_message(self, message: str | bytes) -> None:
        """Record one message."""
        text = message.decode() if isinstance(message, bytes) else message
        now = time.monotonic()
        self.raw_messages.append((now, text))
        with suppress(json.JSONDecodeError):
            event = json.loads(text)
            if isinstance(event, dict):
                self.events.append((now, event))
        self._notify()

    def _on_channel_close(self) -> None:
        """Note that the channel closed."""
        self.channel_closed.set()
        self._notify()

    def _on_track(self, track: MediaStreamTrack) -> None:
        """Record the energy of the model's audio."""
        task = asyncio.create_task(self._record(track), name="plain client: receive audio")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, track: MediaStreamTrack) -> None:
        """Record (time, RMS) per received frame until the track ends."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.audio_frames.append((time.monotonic(), rms(frame.to_ndarray())))
            self._notify()

    def _notify(self) -> None:
        """Wake waiters."""
        self._changed.set()
        self._changed = asyncio.Event()
