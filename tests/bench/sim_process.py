"""The Realtime simulator in a process of its own, driven by the benchmark over stdin/stdout.

    python -m tests.bench.sim_process

prints one JSON line with the simulator's base URL and API key, then answers one JSON command
per line (`{"op": ..., ...}` -> `{"ok": true, ...}`). Running it apart keeps its aiortc peer,
its encoder and its decoder out of the CPU time of the process that runs Home Assistant.

On top of the simulator it records, on the shared monotonic clock:
- `sent`: every audible frame its track hands to aiortc (what "sent by the simulator" means);
- `rtp`: the arrival of every RTP packet of the client's audio, decoded at once (what "arrived
  at the simulator" means): before the simulator's own aiortc jitter buffer, which stands in
  for OpenAI's receiver and holds four packets (80 ms) before it decodes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket
import av

from tests.simulator import CallFunction, Reply, SimulatedCall, Simulator, Turn, call as call_module
from tests.simulator.voice import PlaybackTrack, rms, tone

_OPUS_PAYLOAD_TYPE = 96
_SILENT_RMS = 1.0

sent: list[tuple[float, float]] = []
"""(monotonic time, RMS) of every audible frame the simulator's tracks handed to aiortc."""
rtp: list[tuple[float, float]] = []
"""(monotonic arrival time, RMS once decoded) of every Opus packet from the client."""
sent_audio: list[tuple[float, int, bytes]] = []
"""(monotonic time, pts, mono s16 samples) of the audible frames sent while `capture` is on."""
capturing = False


class TimedPlaybackTrack(PlaybackTrack):
    """The simulator's voice track, noting when each audible frame leaves for the encoder."""

    async def recv(self) -> av.AudioFrame:
        """Return the next frame and note it if it is audible."""
        frame = await super().recv()
        level = rms(frame.to_ndarray())
        if level > _SILENT_RMS:
            sent.append((time.monotonic(), level))
            if capturing:
                sent_audio.append((sent[-1][0], frame.pts or 0, frame.to_ndarray().tobytes()))
        return frame


def _tap_rtp() -> None:
    """Note each RTP packet's arrival before aiortc's jitter buffer holds it back."""
    original = RTCRtpReceiver._handle_rtp_packet
    decoders: dict[int, OpusDecoder] = {}

    async def handle(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type == _OPUS_PAYLOAD_TYPE:
            arrived = time.monotonic()
            decoder = decoders.setdefault(packet.ssrc, OpusDecoder())
            frames = decoder.decode(JitterFrame(packet.payload, packet.timestamp))
            level = max((rms(frame.to_ndarray()) for frame in frames), default=0.0)
            rtp.append((arrived, level))
        await original(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = handle  # type: ignore[method-assign]


class Driver:
    """Runs the simulator and carries out the benchmark's commands on its latest call."""

    def __init__(self) -> None:
        self.simulator = Simulator(voice="tone")
        self._saved_turn_detection: Any = None

    @property
    def call(self) -> SimulatedCall:
        """Return the latest call."""
        return self.simulator.calls[-1]

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out one command and return its answer."""
        handler = getattr(self, f"op_{command.pop('op')}")
        result: dict[str, Any] = await handler(**command)
        return result

    async def op_script(self, turns: list[list[Any]]) -> dict[str, Any]:
        """Queue turns: ["reply", text] or ["call", name, arguments]."""
        parsed: list[Turn] = [
            Reply(turn[1]) if turn[0] == "reply" else CallFunction(turn[1], turn[2])
            for turn in turns
        ]
        self.simulator.script(*parsed)
        return {}

    async def op_reset(self) -> dict[str, Any]:
        """Forget the turns still scripted and cut the audio queued on the latest call."""
        self.simulator._turns.clear()
        self.call._turns.clear()
        self.call._track.clear()
        return {}

    async def op_vad(self, on: bool) -> dict[str, Any]:
        """Switch the latest call's server VAD off (clicks are not speech) or back on."""
        audio_in = self.call.session["audio"]["input"]
        if on:
            audio_in["turn_detection"] = self._saved_turn_detection
        else:
            self._saved_turn_detection = audio_in["turn_detection"]
            audio_in["turn_detection"] = None
        return {}

    async def op_play(self, hz: float, seconds: float, amplitude: float) -> dict[str, Any]:
        """Send a tone on the latest call's track, after what is queued."""
        self.call._track.play(tone(hz, seconds, amplitude))
        return {}

    async def op_record(self, since: float = 0.0) -> dict[str, Any]:
        """Return what was recorded since a time: audio both ways and the events."""

        def after(rows: list[tuple[float, Any]]) -> list[tuple[float, Any]]:
            return [row for row in rows if row[0] >= since]

        calls = [
            call for call in self.simulator.calls if (call.closed_at or time.monotonic()) >= since
        ]
        return {
            "sent": after(sent),
            "rtp": after(rtp),
            "calls": [
                {
                    "created_at": call.created_at,
                    "frames": after(call.audio_frames),
                    "server": [(at, _summary(event)) for at, event in after(call.server_events)],
                    "client": [(at, _summary(event)) for at, event in after(call.client_events)],
                }
                for call in calls
            ],
        }

    async def op_capture(self, on: bool) -> dict[str, Any]:
        """Keep the samples of audible frames sent from now on (or stop, and forget them)."""
        global capturing  # noqa: PLW0603 - the track is created by the simulator
        capturing = on
        if not on:
            sent_audio.clear()
        return {}

    async def op_sent_audio(self, since: float = 0.0) -> dict[str, Any]:
        """Return the captured frames since a time: [time, pts, base64 of mono s16] each."""
        return {
            "frames": [
                [at, pts, base64.b64encode(samples).decode()]
                for at, pts, samples in sent_audio
                if at >= since
            ]
        }

    async def op_count(self, side: str, event: str) -> dict[str, Any]:
        """Return how many events of a kind the latest call has (server or client side)."""
        events = self.call.server_events if side == "server" else self.call.client_events
        return {"count": sum(1 for _, sent_event in events if _summary(sent_event) == event)}

    async def op_voice(self, kind: str) -> dict[str, Any]:
        """Speak with espeak-ng ("speech") or in tones ("tone") from now on."""
        self.simulator._voice.kind = kind  # type: ignore[assignment]
        return {}

    async def op_wait(
        self, side: str, event: str, count: int, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until the latest call has `count` events of a kind (server or client side).

        `event` may name several kinds, separated by "|": they count together.
        """
        kinds = set(event.split("|"))
        async with asyncio.timeout(timeout):
            while True:
                events = self.call.server_events if side == "server" else self.call.client_events
                times = [at for at, sent_event in events if _summary(sent_event) in kinds]
                if len(times) >= count:
                    return {"at": times[count - 1]}
                await asyncio.sleep(0.005)

    async def op_forget(self) -> dict[str, Any]:
        """Drop the recordings so far (between phases, to keep answers small)."""
        sent.clear()
        rtp.clear()
        sent_audio.clear()
        for call in self.simulator.calls:
            call.audio_frames.clear()
        return {}


def _summary(event: dict[str, Any]) -> str:
    """Return an event's type, with the item type for conversation.item.create."""
    kind = str(event.get("type"))
    if kind == "conversation.item.create":
        return f"{kind}:{event.get('item', {}).get('type')}"
    return kind


async def _serve() -> None:
    """Start the simulator, announce it, and answer commands until stdin closes."""
    call_module.PlaybackTrack = TimedPlaybackTrack  # type: ignore[misc]
    _tap_rtp()
    driver = Driver()
    await driver.simulator.start()
    out = sys.stdout
    out.write(
        json.dumps({"base_url": driver.simulator.base_url, "api_key": driver.simulator.api_key})
        + "\n"
    )
    out.flush()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            try:
                answer = {"ok": True, **await driver.handle(json.loads(line))}
            except Exception as err:  # the benchmark reports it
                logging.getLogger(__name__).exception("command failed: %s", line)
                answer = {"ok": False, "error": repr(err)}
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        await driver.simulator.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_serve())
