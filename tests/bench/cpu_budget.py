"""Where a call's CPU must go before any of the integration's own code: the parts on their own.

    python -m tests.bench.cpu_budget transport|devices|engine SECONDS [BACKEND]

prints one JSON line. Run in a process of its own, so that the figure is that part's alone:
- transport: two aiortc peers over loopback, each sending 20 ms Opus packets already encoded (as
  the microphone track hands them over) and receiving through the arrival jitter buffer into a
  handler that drops them (as the speaker's is called). Half the CPU is one peer: ICE, DTLS/SRTP,
  RTP and RTCP and the event loop that runs them, for 50 packets a second each way.
- devices: the audio backend recording from the default source and playing silence on the
  default sink, as a call does, with nothing done to the audio.
- engine: the parts together as the integration runs them, without Home Assistant and the
  Realtime client: a peer with the microphone track (noise suppression, high-pass, Opus on its
  device thread) and the speaker sink (Opus decoded on arrival), against a far end as in the
  transport part (whose figure is taken off).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import override

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
import numpy as np

from custom_components.realtime_voice.audio.backend import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFormat,
    BackendName,
)
from custom_components.realtime_voice.audio.echo import MicrophoneProcessor, ProcessingOptions
from custom_components.realtime_voice.audio.factory import create_backend
from custom_components.realtime_voice.audio.microphone import MicrophoneTrack
from custom_components.realtime_voice.audio.opus import OpusPacket, VoiceEncoder, packet
from custom_components.realtime_voice.audio.speaker import SpeakerSink
from custom_components.realtime_voice.realtime.jitter import PacketHandler, play_audio_on_arrival


class _PacketTrack(MediaStreamTrack):
    """Sends the same second of speech-like Opus over and over, paced at 20 ms a packet."""

    kind = "audio"

    def __init__(self, payloads: list[bytes]) -> None:
        super().__init__()
        self._payloads = payloads
        self._pts = 0
        self._start: float | None = None

    @override
    async def recv(self) -> OpusPacket:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        payload = self._payloads[(self._pts // FRAME_SAMPLES) % len(self._payloads)]
        wrapped = packet(payload, self._pts)
        self._pts += FRAME_SAMPLES
        return wrapped


def _payloads() -> list[bytes]:
    """Return a second of Opus packets of a noisy tone (sizes like speech at 96 kb/s)."""
    rng = np.random.default_rng(2)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    samples = (6000 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 800, t.size)).astype(np.int16)
    encoder = VoiceEncoder()
    return [
        encoder.encode(samples[i : i + FRAME_SAMPLES].tobytes())
        for i in range(0, samples.size, FRAME_SAMPLES)
    ]


async def _call(
    tracks: tuple[MediaStreamTrack, MediaStreamTrack],
    handlers: tuple[PacketHandler, PacketHandler],
    seconds: float,
    settle: float,
) -> float:
    """Connect two peers over loopback, each sending its track; return CPU s/s of the process."""
    peers = (RTCPeerConnection(), RTCPeerConnection())
    try:
        for peer, track, handler in zip(peers, tracks, handlers, strict=True):
            peer.addTrack(track)
            play_audio_on_arrival(peer, handler)
        offerer, answerer = peers
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        # The answerer's transceiver exists only now: give it the buffer too.
        play_audio_on_arrival(answerer, handlers[1])
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.sleep(settle)
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        return (time.process_time() - cpu) / (time.monotonic() - wall)
    finally:
        for peer in peers:
            await peer.close()


async def aiortc_transport_floor(seconds: float, settle: float = 2.0) -> dict[str, float]:
    """Return one peer's CPU seconds per second of call, and the packets each side received."""
    payloads = _payloads()
    received = [0]

    def on_packet(_payload: bytes) -> None:
        received[0] += 1

    tracks = (_PacketTrack(payloads), _PacketTrack(payloads))
    cpu = await _call(tracks, (on_packet, on_packet), seconds, settle)
    return {"s_per_s": cpu / 2, "packets_per_s": received[0] / (seconds + settle) / 2}


async def audio_engine(seconds: float, backend_name: str, settle: float = 2.0) -> dict[str, float]:
    """Return CPU s/s of a call through the integration's audio engine, without Home Assistant.

    One peer is the box's: the microphone track encoding on its device thread, the speaker
    decoding each packet on arrival, noise suppression and high-pass as a session has them. The
    other sends ready packets and drops what it gets, as in the transport part; that part's
    figure is for this peer too, so the result is less one transport.
    """
    backend = create_backend(BackendName(backend_name))
    speaker = await SpeakerSink.open(backend)
    microphone = await MicrophoneTrack.open(
        backend,
        processor=MicrophoneProcessor(ProcessingOptions(echo_cancellation=False), None),
        encode=True,
    )
    try:
        tracks = (microphone, _PacketTrack(_payloads()))
        cpu = await _call(tracks, (speaker.write_opus, lambda _payload: None), seconds, settle)
    finally:
        await microphone.aclose()
        await speaker.aclose()
        backend.close()
    return {"s_per_s_with_far_end": cpu}


def device_floor(seconds: float, backend_name: str, settle: float = 1.0) -> dict[str, float]:
    """Return the CPU seconds per second of recording and playing with nothing done to it."""
    backend = create_backend(BackendName(backend_name))
    blocks = [0]

    def on_block(_data: bytes) -> None:
        blocks[0] += 1

    fmt = AudioFormat()
    silence = bytes(fmt.bytes_per_second)
    done = threading.Event()

    def on_error(err: Exception) -> None:
        sys.stderr.write(f"{err}\n")
        done.set()

    streams = [
        backend.open_input(None, fmt, on_block, on_error),
        backend.open_output(None, fmt, lambda frames: silence[: 2 * frames], on_error),
    ]
    try:
        time.sleep(settle)
        before, cpu, wall = blocks[0], time.process_time(), time.monotonic()
        if done.wait(seconds):
            raise RuntimeError("a device failed")
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        return {"s_per_s": cpu / wall, "blocks_per_s": (blocks[0] - before) / wall}
    finally:
        for stream in streams:
            stream.close()
        backend.close()


async def parts_usage(seconds: float, backend_name: str) -> dict[str, float]:
    """Return the CPU s/s of each part, each run in a process of its own."""
    usage = {}
    for part in ("transport", "devices", "engine"):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.cpu_budget",
            part,
            str(seconds),
            backend_name,
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"tests.bench.cpu_budget {part} failed ({process.returncode})")
        usage[part] = next(iter(json.loads(output).values()))
    usage["engine"] -= usage["transport"]  # the far end's peer
    return usage


if __name__ == "__main__":
    part, length = sys.argv[1], float(sys.argv[2])
    if part == "transport":
        result = asyncio.run(aiortc_transport_floor(length))
    elif part == "engine":
        result = asyncio.run(audio_engine(length, sys.argv[3] if len(sys.argv) > 3 else "pulse"))
    else:
        result = device_floor(length, sys.argv[3] if len(sys.argv) > 3 else "pulse")
    sys.stdout.write(json.dumps(result) + "\n")
