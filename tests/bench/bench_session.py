"""The benchmark: a real session of the integration in Home Assistant against the simulator.

Run by scripts/bench (the file name keeps it out of the normal test run). Home Assistant, the
integration and its aiortc peer run in this (pytest) process, "the Home Assistant process"; the
simulator runs in a process of its own (tests/bench/sim_process.py), so its peer's CPU is not
counted. Both use the same monotonic clock. Audio goes through the PulseAudio virtual devices;
5 ms recorders (MonitorClock) on `mic` and `speaker.monitor` tell when a click reached a device.

Phases, all in full duplex so that the echo gate never mutes the microphone:
1. duplex: CPU per second of audio both ways, then the event loop's lag; the bare Opus floor.
2. latency: clicks into the microphone and from the simulator, both ways at once.
   hearing: espeak-ng replies recorded on `speaker.monitor` and aligned with what the simulator
   sent: gaps and missing speech, correlation, wire→speaker; then replies into a sink that
   wakes 500 ms late (tests/bench/hearing.py).
3. barge-in: the user speaks over a reply (server VAD) until the speaker is silent.
4. tools: the model turns a light on and off (input_boolean behind a template light).
5. echo: the speaker's echo in the microphone (tests.helpers.virtual_audio.acoustic_echo) at -6 and
   -20 dB, with espeak-ng speech: echo energy at the wire without and with echo cancellation
   (ERLE), false barge-ins from the echo alone, true barge-ins over it, the canceller's CPU.
   This phase runs its own conversations (echo cancellation, or full duplex to compare).
6. cycles: start/end conversations (connect time) and resources before and after.
7. cost: estimated USD per minute of conversation, computed over the simulator's usage model
   (tests/bench/cost.py; no audio, independent of the machine).

Environment (scripts/bench sets it from its options): RV_BENCH_QUICK=1 (fewer repetitions),
RV_BENCH_BACKEND (pulse), RV_BENCH_OUTPUT (the JSON file), RV_BENCH_PHASES (a comma-separated
subset of the phases), RV_BENCH_PROFILE (cProfile the CPU window into this file).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
import cProfile
import dataclasses
from dataclasses import dataclass
import functools
import gc
import json
import os
from pathlib import Path
import platform
import pstats
import re
import statistics
import sys
import threading
import time
from typing import Any
from unittest.mock import patch

import aiortc
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API, __version__ as ha_version
from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.audio import DuplexMode
from custom_components.realtime_voice.audio.libpulse import PulseStream
from custom_components.realtime_voice.audio.speaker import SpeakerSink
from custom_components.realtime_voice.config_flow import RealtimeVoiceConfigFlow
from custom_components.realtime_voice.const import (
    CONF_BASE_URL,
    CONF_DUPLEX,
    CONF_IDLE_TIMEOUT,
    CONF_TOOL_TIMEOUT,
    DOMAIN,
    EVENT_SESSION_STARTED,
)
from tests.helpers.audio_helpers import MonitorClock, audio_frame
from tests.helpers.integration import box_data, box_session
from tests.helpers.virtual_audio import (
    ECHO_LEVELS_DB,
    MIC,
    MIC_FEED,
    SPEAKER,
    SPEAKER_MONITOR,
    STREAM_SETTLE,
    acoustic_echo,
    speech_wav,
    tone,
    write_wav,
)

from .chromium import browser_phase
from .cost import LONGER, estimates
from .hearing import hearing_phase
from .report import Metric, distribution, write

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio_as_is", "socket_enabled")

QUICK = os.environ.get("RV_BENCH_QUICK") == "1"
BACKEND = os.environ.get("RV_BENCH_BACKEND", "pulse")
OUTPUT = Path(os.environ.get("RV_BENCH_OUTPUT", "bench-results.json"))
PHASES = os.environ.get(
    "RV_BENCH_PHASES", "duplex,latency,hearing,barge_in,tools,echo,cycles,browser,cost"
).split(",")

CPU_SECONDS = 5.0 if QUICK else 15.0
LAG_SECONDS = 5.0 if QUICK else 15.0
CLICKS = 10 if QUICK else 30
BARGE_INS = 5 if QUICK else 15
TOOL_CALLS = 10 if QUICK else 30
CYCLES = 20 if QUICK else 50
ECHO_REPLIES_WITHOUT = 3 if QUICK else 10
ECHO_REPLIES_WITH = 5 if QUICK else 20
ECHO_BARGE_INS = 5 if QUICK else 20
HEARING_REPLIES = 8 if QUICK else 20
HEARING_LATE_REPLIES = 2 if QUICK else 3
WARM_CYCLES = 5

PERIOD = 0.5
"""Seconds between clicks."""
LOUD = 1000.0
"""RMS above which a 5 ms block or a 20 ms frame holds a click."""
LAG_INTERVAL = 0.005
_PIPE_LIMIT = 64 * 1024 * 1024
KITCHEN = "light.kitchen_light"
TARGETS = {
    "connect_ms": 150.0,
    "mic_to_wire_ms": 60.0,
    "wire_to_speaker_ms": 60.0,
    "barge_in_ms": 50.0,
    "tool_roundtrip_ms": 20.0,
    "cpu_ratio": 3.0,
    "loop_lag_ms": 5.0,
    "rss_growth_mb": 2.0,
    "erle_db": 25.0,
    "true_barge_ins": 0.95,
}
USD_PER_MINUTE = {"gpt-realtime-2.1": 0.10, "gpt-realtime-2.1-mini": 0.03}
"""The upper end of the research notes' estimates (s2-anchors-refresh §2.1)."""
ECHO_REPLY = "Sure. The kitchen light is on, and the living room is warm and quiet tonight."
USER_OVER_REPLY = "Stop, please. What time is it?"
ECHO_SKIP_SECONDS = 0.3
"""The start of each reply left out of the echo energy: the residual guard mutes it."""
ERLE_CAP_DB = 90.0
"""Cancelled to digital silence reads as this (a ratio to zero has no value)."""


@pytest.fixture(autouse=True)
async def enable_event_loop_debug() -> None:
    """Run the loop as Home Assistant does, not in the harness's debug mode (slow by design)."""
    asyncio.get_running_loop().set_debug(False)


class SimProcess:
    """The simulator process and its command pipe."""

    def __init__(self, process: asyncio.subprocess.Process, hello: dict[str, str]) -> None:
        self.process = process
        self.base_url = hello["base_url"]
        self.api_key = hello["api_key"]
        self._lock = asyncio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def run(cls) -> AsyncIterator[SimProcess]:
        """Start the simulator process; stop it at the end."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.sim_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_PIPE_LIMIT,
        )
        assert process.stdout is not None
        assert process.stdin is not None
        try:
            async with asyncio.timeout(30):
                hello = json.loads(await process.stdout.readline())
            yield cls(process, hello)
        finally:
            process.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()

    async def __call__(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send a command and return its answer; raise if it failed."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        async with self._lock:
            self.process.stdin.write((json.dumps({"op": op, **arguments}) + "\n").encode())
            await self.process.stdin.drain()
            answer: dict[str, Any] = json.loads(await self.process.stdout.readline())
        if not answer.pop("ok"):
            raise RuntimeError(f"simulator command {op} failed: {answer['error']}")
        return answer


@dataclass
class Bench:
    """What the phases share."""

    hass: HomeAssistant
    sim: SimProcess
    workdir: Path
    metrics: list[Metric]
    info: dict[str, Any]

    @property
    def session(self) -> Any:
        """Return the box's VoiceSession."""
        return box_session(self.hass.config_entries.async_entries(DOMAIN)[0])

    async def action(self, service: str, **data: Any) -> None:
        """Call one of the integration's actions and wait for it."""
        await self.hass.services.async_call(DOMAIN, service, data, blocking=True)


# --- Helpers ---------------------------------------------------------------------------------


def onsets(times: list[float], gap: float = PERIOD / 2) -> list[float]:
    """Return the first time of each group of loud times."""
    result: list[float] = []
    last = -1e9
    for at in sorted(times):
        if at - last > gap:
            result.append(at)
        last = at
    return result


def pair(
    reference: list[float], arrivals: list[float], window: float = PERIOD * 0.9
) -> list[float]:
    """Match each reference onset with the first arrival after it; return the delays in ms."""
    delays = []
    for at in reference:
        later = [a for a in arrivals if at <= a < at + window]
        if later:
            delays.append(1000 * (later[0] - at))
    return delays


def loud(rows: list[list[float]], threshold: float = LOUD) -> list[float]:
    """Return the times of the (time, RMS) rows louder than threshold."""
    return [at for at, level in rows if level > threshold]


def resources() -> dict[str, float]:
    """Return this process's resident memory (MB), threads and open descriptors."""
    status = Path("/proc/self/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return {
        "rss_mb": rss_kb / 1024,
        "threads": len(list(Path("/proc/self/task").iterdir())),
        "fds": len(list(Path("/proc/self/fd").iterdir())),
    }


def thread_cpu() -> dict[str, float]:
    """Return CPU seconds per thread name of this process (threads of one name summed).

    Python threads go by their Python name: the kernel's copy is cut to 15 characters, which
    makes every "realtime_voice ..." thread one.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    # Pool workers are numbered ("SyncWorker_3"): one name for a pool.
    python_names = {
        thread.native_id: re.sub(r"[-_][\d_]+$", "", thread.name)
        for thread in threading.enumerate()
    }
    result: dict[str, float] = {}
    for base in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            name = python_names.get(int(base.name)) or (base / "comm").read_text().strip()
            fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / ticks
            result[name] = result.get(name, 0.0) + seconds
    return result


async def play_into_mic(wav: Path) -> asyncio.subprocess.Process:
    """Start playing a WAV into the virtual microphone (paplay: another process)."""
    return await asyncio.create_subprocess_exec("paplay", f"--device={MIC_FEED}", str(wav))


def first_after(rows: list[list[Any]], kind: str, since: float = 0.0) -> list[float]:
    """Return the times of the events of one kind at or after since."""
    return [at for at, name in rows if name == kind and at >= since]


# --- Phases ----------------------------------------------------------------------------------


async def duplex_phase(bench: Bench) -> None:
    """CPU of the Home Assistant process with audio both ways, then loop lag, then the floor."""
    seconds = CPU_SECONDS + LAG_SECONDS + STREAM_SETTLE + 1
    # Quiet enough (RMS ~75, -53 dBFS) that the simulator's VAD (-45 dBFS) takes it for no one.
    rng = np.random.default_rng(1)
    mic = tone(300.0, seconds, amplitude=0.003) + rng.normal(0, 20, int(48000 * seconds)).astype(
        np.int16
    )
    wav = write_wav(bench.workdir / "mic.wav", mic)
    await bench.sim("play", hz=660.0, seconds=seconds, amplitude=0.3)
    player = await play_into_mic(wav)
    await asyncio.sleep(STREAM_SETTLE)

    threads_before = thread_cpu()
    cpu, wall = time.process_time(), time.monotonic()
    with _profiled():
        await asyncio.sleep(CPU_SECONDS)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    threads_after = thread_cpu()

    lags = await _loop_lag(LAG_SECONDS)
    await player.wait()
    record = await bench.sim("record", since=time.monotonic() - seconds)
    floor = codec_floor(mic[: int(48000 * wall)], tone(660.0, wall, amplitude=0.3))

    per_second = cpu / wall
    ratio = per_second / floor
    by_thread = {
        name: round((threads_after[name] - threads_before.get(name, 0.0)) / wall, 4)
        for name in threads_after
        if threads_after[name] - threads_before.get(name, 0.0) > 0
    }
    bench.metrics.append(
        Metric(
            "cpu_per_audio_s",
            "s/s",
            f"≤ {TARGETS['cpu_ratio']:g}x floor",
            ratio <= TARGETS["cpu_ratio"],
            value=per_second,
            detail={
                "floor_opus_s_per_s": round(floor, 5),
                "ratio": round(ratio, 2),
                "wall_s": round(wall, 2),
                "by_thread_s_per_s": dict(sorted(by_thread.items(), key=lambda kv: -kv[1])),
                "received_frames_at_sim": len(record["calls"][-1]["frames"]),
            },
        )
    )
    bench.metrics.append(
        Metric(
            "cpu_ratio_to_opus",
            "x",
            f"≤ {TARGETS['cpu_ratio']:g}",
            ratio <= TARGETS["cpu_ratio"],
            value=ratio,
        )
    )
    lag_metric = distribution("loop_lag_ms", lags, limit=TARGETS["loop_lag_ms"], judged="p99")
    lag_metric.detail = {"probe_interval_ms": 1000 * LAG_INTERVAL}
    bench.metrics.append(lag_metric)


@contextlib.contextmanager
def _profiled() -> Iterator[None]:
    """Profile the CPU window into the file RV_BENCH_PROFILE names (scripts/bench --profile).

    cProfile on Python 3.14 sees every thread, and a blocking call (libpulse reads, epoll)
    counts its waiting time: read the CPU figures without profiling, the profile for who calls
    what. (Timed by time.thread_time instead, it mixes the clocks of threads: no better.)
    """
    path = os.environ.get("RV_BENCH_PROFILE")
    if not path:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        with Path(path).open("w") as out:
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(40)
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)


async def _loop_lag(seconds: float) -> list[float]:
    """Return how late (ms) the loop woke a sleeper, every LAG_INTERVAL, for seconds."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    end = loop.time() + seconds
    while loop.time() < end:
        start = loop.time()
        await asyncio.sleep(LAG_INTERVAL)
        lags.append(1000 * (loop.time() - start - LAG_INTERVAL))
    return lags


def codec_floor(uplink: np.ndarray, downlink: np.ndarray) -> float:
    """Return CPU seconds per second of bare Opus: encode the uplink, decode the downlink.

    aiortc's own OpusEncoder/OpusDecoder (PyAV, libopus), as the session uses them: the encoder
    takes 20 ms mono frames and resamples to stereo, the decoder returns stereo frames.
    """
    frames = [audio_frame(uplink[i : i + 960], i) for i in range(0, uplink.size - 959, 960)]
    packets = []
    sender = OpusEncoder()
    for i in range(0, downlink.size - 959, 960):
        payloads, timestamp = sender.encode(audio_frame(downlink[i : i + 960], i))
        packets.extend((payload, timestamp) for payload in payloads)
    encoder, decoder = OpusEncoder(), OpusDecoder()
    start = time.thread_time()
    for frame in frames:
        encoder.encode(frame)
    for payload, timestamp in packets:
        decoder.decode(JitterFrame(payload, timestamp))
    seconds = uplink.size / 48000
    return (time.thread_time() - start) / seconds


async def latency_phase(bench: Bench) -> None:
    """Clicks both ways at once: microphone to the simulator, simulator to the speaker."""
    await bench.sim("vad", on=False)  # clicks are not speech: no turns, no replies
    click = tone(1000.0, 0.01, amplitude=0.8)
    clicks = np.concatenate([np.pad(click, (0, int(48000 * PERIOD) - click.size))] * CLICKS)
    wav = write_wav(bench.workdir / "clicks.wav", clicks)
    decoded: list[float] = []
    ring_ms: list[float] = []
    original_write = SpeakerSink._write

    def timed_write(sink: SpeakerSink, frames: list[Any]) -> None:
        if any(np.abs(frame.to_ndarray().astype(np.int32)).max() > 4 * LOUD for frame in frames):
            decoded.append(time.monotonic())
        original_write(sink, frames)

    async def sample_ring() -> None:
        sink = bench.session._conversation._audio.speaker
        while True:
            ring_ms.append(1000 * sink.queued_seconds)
            await asyncio.sleep(0.005)

    with (
        patch.object(SpeakerSink, "_write", timed_write),
        MonitorClock(MIC) as mic_ref,
        MonitorClock(SPEAKER_MONITOR) as speaker_ref,
    ):
        await asyncio.sleep(STREAM_SETTLE)
        sampler = asyncio.create_task(sample_ring())
        since = time.monotonic()
        player = await play_into_mic(wav)
        await asyncio.sleep(PERIOD / 2)
        for _ in range(CLICKS):
            await bench.sim("play", hz=1000.0, seconds=0.01, amplitude=0.8)
            await asyncio.sleep(PERIOD)
        await player.wait()
        await asyncio.sleep(0.5)
        sampler.cancel()
    record = await bench.sim("record", since=since)
    await bench.sim("vad", on=True)

    call = record["calls"][-1]
    mic_clicks = onsets(mic_ref.loud_times(LOUD))
    mic_to_wire = pair(mic_clicks, loud(record["rtp"]))
    metric = distribution("mic_to_wire_ms", mic_to_wire, limit=TARGETS["mic_to_wire_ms"])
    after_jitter = pair(mic_clicks, loud(call["frames"]))
    metric.detail = {
        "clicks_heard_on_mic": len(mic_clicks),
        "to_simulator_decoded_after_its_jitter_buffer_median_ms": _median(after_jitter),
    }
    bench.metrics.append(metric)

    sent = onsets(loud(record["sent"]))
    heard = onsets(speaker_ref.loud_times(LOUD))
    metric = distribution(
        "wire_to_speaker_ms", pair(sent, heard), limit=TARGETS["wire_to_speaker_ms"]
    )
    metric.detail = {
        "clicks_sent": len(sent),
        "sent_to_decoded_median_ms": _median(pair(sent, onsets(decoded))),
        "decoded_to_speaker_median_ms": _median(pair(onsets(decoded), heard)),
        "speaker_buffer_median_ms": _median(ring_ms),
        "speaker": bench.session.audio_diagnostics().get("speaker"),
    }
    bench.metrics.append(metric)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


async def barge_in_phase(bench: Bench) -> None:
    """Speak over a reply: server speech_started -> the speaker is silent."""
    long_reply = "x" * 120  # the simulator's tone voice: 6 s
    await bench.sim("script", turns=[["reply", long_reply]] * (BARGE_INS + 2))
    burst = tone(300.0, 0.3, amplitude=0.5)
    gap = np.zeros(int(48000 * 2.3), dtype=np.int16)
    wav = write_wav(bench.workdir / "bursts.wav", np.concatenate([gap, burst] * BARGE_INS))
    flushed: list[float] = []
    device_flushed: list[float] = []
    audible_writes: list[float] = []
    original_flush, original_device_flush = SpeakerSink.flush, PulseStream.flush
    original_device_write = PulseStream.write

    def timed_flush(sink: SpeakerSink) -> None:
        flushed.append(time.monotonic())
        original_flush(sink)

    def timed_device_flush(stream: PulseStream) -> None:
        original_device_flush(stream)
        device_flushed.append(time.monotonic())

    def timed_device_write(stream: PulseStream, data: bytes) -> None:
        if np.abs(np.frombuffer(data, dtype=np.int16)).max(initial=0) > 4 * LOUD:
            audible_writes.append(time.monotonic())
        original_device_write(stream, data)

    with (
        patch.object(SpeakerSink, "flush", timed_flush),
        patch.object(PulseStream, "flush", timed_device_flush),
        patch.object(PulseStream, "write", timed_device_write),
        MonitorClock(SPEAKER_MONITOR) as speaker_ref,
    ):
        await asyncio.sleep(STREAM_SETTLE)
        since = time.monotonic()
        await bench.action("send_text", text="Tell me a long story.")
        player = await play_into_mic(wav)
        await player.wait()
        await asyncio.sleep(1.0)
    await bench.sim("reset")
    record = await bench.sim("record", since=since)
    call = record["calls"][-1]
    speaker_loud = speaker_ref.loud_times(LOUD)
    delays = []
    steps: dict[str, list[float]] = {"flush": [], "device_flushed": [], "last_audible_write": []}
    for start in first_after(call["server"], "input_audio_buffer.speech_started", since):
        if not any(start - 0.1 <= at <= start for at in speaker_loud):
            continue  # nothing was playing: not a barge-in
        last = max(at for at in speaker_loud if start - 0.1 <= at <= start + 0.6)
        delays.append(1000 * max(0.0, last - start))
        for name, times in (
            ("flush", flushed),
            ("device_flushed", device_flushed),
        ):
            steps[name].extend(1000 * (at - start) for at in times if start <= at < start + 0.6)
        writes = [at for at in audible_writes if start - 0.1 <= at < start + 0.6]
        if writes:
            steps["last_audible_write"].append(1000 * (max(writes) - start))
    metric = distribution("barge_in_ms", delays, limit=TARGETS["barge_in_ms"])
    metric.detail = {
        **{f"{name}_after_speech_started_median_ms": _median(v) for name, v in steps.items()},
        "speech_started": len(first_after(call["server"], "input_audio_buffer.speech_started")),
        "cleared": len(first_after(call["server"], "output_audio_buffer.cleared")),
    }
    bench.metrics.append(metric)


async def tool_phase(bench: Bench) -> None:
    """Have the model turn a light on and off: arguments done -> function_call_output sent."""
    turns: list[list[Any]] = []
    for index in range(TOOL_CALLS):
        intent = "intent__HassTurnOn" if index % 2 == 0 else "intent__HassTurnOff"
        turns += [["call", intent, {"name": "Kitchen light"}], ["reply", "Done."]]
    await bench.sim("script", turns=turns)
    since = time.monotonic()
    base_outputs = len(first_after((await bench.sim("record"))["calls"][-1]["client"], _OUTPUT))
    base_stopped = len(
        first_after(
            (await bench.sim("record"))["calls"][-1]["server"], "output_audio_buffer.stopped"
        )
    )
    for index in range(TOOL_CALLS):
        await bench.action("send_text", text="Toggle the kitchen light.")
        await bench.sim("wait", side="client", event=_OUTPUT, count=base_outputs + index + 1)
        await bench.sim(
            "wait",
            side="server",
            event="output_audio_buffer.stopped",
            count=base_stopped + index + 1,
        )
        expected = "on" if index % 2 == 0 else "off"
        assert bench.hass.states.get(KITCHEN).state == expected
    record = await bench.sim("record", since=since)
    call = record["calls"][-1]
    done = first_after(call["server"], "response.function_call_arguments.done", since)
    outputs = first_after(call["client"], _OUTPUT, since)
    delays = [1000 * (out - start) for start, out in zip(done, outputs, strict=True)]
    bench.metrics.append(
        distribution("tool_roundtrip_ms", delays, limit=TARGETS["tool_roundtrip_ms"])
    )


_OUTPUT = "conversation.item.create:function_call_output"


async def echo_phase(bench: Bench) -> None:
    """Echo at each level: ERLE at the wire, false and true barge-ins, the canceller's CPU."""
    await bench.sim("voice", kind="speech")
    wav = speech_wav(bench.workdir / "user.wav", USER_OVER_REPLY)
    cpu: list[float] = []
    try:
        for gain_db in ECHO_LEVELS_DB:
            with acoustic_echo(gain_db):
                without = await _echo_energies(bench, DuplexMode.FULL, ECHO_REPLIES_WITHOUT)
                with_aec = await _echo_energies(
                    bench, DuplexMode.ECHO_CANCELLATION, ECHO_REPLIES_WITH
                )
                barge_ins = await _barge_ins_over_echo(bench, wav)
            cpu.append(with_aec.cpu_per_audio_second)
            _echo_metrics(bench, gain_db, without, with_aec, barge_ins)
    finally:
        await bench.sim("voice", kind="tone")
    rng = np.random.default_rng(2)
    floor = codec_floor(rng.normal(0, 3000, 48000 * 5).astype(np.int16), tone(660.0, 5.0, 0.3))
    per_second = statistics.median(cpu)
    bench.metrics.append(
        Metric(
            "canceller_cpu_ratio_to_opus",
            "x",
            "reported",
            None if not cpu else True,
            value=per_second / floor,
            detail={"cpu_s_per_audio_s": round(per_second, 5), "opus_s_per_s": round(floor, 5)},
        )
    )


@dataclass
class _EchoRun:
    """What one conversation of replies over the echo gave."""

    energies: list[float]
    """Mean square of what the simulator received while each reply played."""
    false_barge_ins: int
    cpu_per_audio_second: float
    processing: dict[str, Any]


async def _conversation(bench: Bench, duplex: DuplexMode) -> float:
    """Start a conversation in a duplex mode; return when."""
    session = bench.session
    session.apply_settings(dataclasses.replace(session.settings, duplex=duplex))
    since = time.monotonic()
    await bench.action("start_conversation")
    await asyncio.sleep(STREAM_SETTLE)
    return since


async def _echo_energies(bench: Bench, duplex: DuplexMode, replies: int) -> _EchoRun:
    """Have the assistant answer `replies` times; measure what reached the wire meanwhile.

    Without cancellation (full duplex) the simulator's VAD is off, or the echo would cut every
    reply short; with it, the VAD runs and every speech_started is a false barge-in.
    """
    since = await _conversation(bench, duplex)
    if duplex is DuplexMode.FULL:
        await bench.sim("vad", on=False)
    await bench.sim("script", turns=[["reply", ECHO_REPLY]] * replies)
    ended = "output_audio_buffer.stopped|output_audio_buffer.cleared"
    for index in range(replies):
        await bench.action("send_text", text="How is the house?")
        await bench.sim("wait", side="server", event=ended, count=index + 1, timeout=30)
    processing = bench.session.audio_diagnostics()["processing"] or {}
    await bench.action("end_conversation")
    call = (await bench.sim("record", since=since))["calls"][-1]
    starts = first_after(call["server"], "output_audio_buffer.started")
    stops = first_after(call["server"], "output_audio_buffer.stopped") + first_after(
        call["server"], "output_audio_buffer.cleared"
    )
    energies = []
    for start in starts:
        end = min(at for at in stops if at > start)
        levels = [rms for at, rms in call["frames"] if start + ECHO_SKIP_SECONDS <= at < end]
        energies.append(float(np.mean(np.square(levels))) if levels else 0.0)
    seconds = 0.02 * processing.get("frames", 0)
    return _EchoRun(
        energies,
        len(first_after(call["server"], "input_audio_buffer.speech_started")),
        processing.get("cpu_seconds", 0.0) / seconds if seconds else 0.0,
        processing,
    )


async def _barge_ins_over_echo(bench: Bench, wav: Path) -> list[float | None]:
    """Talk over long replies; return speech_started -> speaker silent for each try.

    None where the simulator did not hear the user start.
    """
    since = await _conversation(bench, DuplexMode.ECHO_CANCELLATION)
    talked: list[float] = []
    with MonitorClock(SPEAKER_MONITOR) as speaker_ref:
        for _ in range(ECHO_BARGE_INS):
            await bench.sim("script", turns=[["reply", ECHO_REPLY * 3], ["reply", "Okay."]])
            replies = await bench.sim("count", side="server", event="output_audio_buffer.started")
            await bench.action("send_text", text="Tell me about the house.")
            await bench.sim(
                "wait",
                side="server",
                event="output_audio_buffer.started",
                count=replies["count"] + 1,
                timeout=30,
            )
            await asyncio.sleep(1.0)  # well into the reply
            talked.append(time.monotonic())
            await (await play_into_mic(wav)).wait()
            await asyncio.sleep(2.5)  # the user's turn ends, "Okay." is said
            await bench.sim("reset")
    await bench.action("end_conversation")
    call = (await bench.sim("record", since=since))["calls"][-1]
    speech = first_after(call["server"], "input_audio_buffer.speech_started")
    speaker_loud = speaker_ref.loud_times(LOUD)
    delays: list[float | None] = []
    for at in talked:
        start = next((s for s in speech if at <= s < at + 2.0), None)
        if start is None:
            delays.append(None)
            continue
        audible = [t for t in speaker_loud if start - 0.1 <= t <= start + 0.6]
        delays.append(1000 * max(0.0, max(audible, default=start) - start))
    return delays


def _echo_metrics(
    bench: Bench,
    gain_db: float,
    without: _EchoRun,
    with_aec: _EchoRun,
    barge_ins: list[float | None],
) -> None:
    """Add the rows of one echo level."""
    level = f"{-gain_db:g}dB"
    reference = statistics.median(without.energies)
    erle = [
        min(ERLE_CAP_DB, float(10 * np.log10(reference / energy))) if energy > 0 else ERLE_CAP_DB
        for energy in with_aec.energies
    ]
    metric = distribution(f"erle_{level}", erle, limit=TARGETS["erle_db"], unit="dB")
    metric.target = f"median ≥ {TARGETS['erle_db']:g}"
    metric.met = statistics.median(erle) >= TARGETS["erle_db"] if erle else None
    metric.detail = {
        "echo_rms_without": round(float(np.sqrt(reference)), 1),
        "echo_rms_with_median": round(float(np.sqrt(statistics.median(with_aec.energies))), 2),
        "false_barge_ins_without": without.false_barge_ins,
        "replies_without": len(without.energies),
        "erle_by_reply": [round(value, 1) for value in erle],
        "processing": with_aec.processing,
    }
    bench.metrics.append(metric)
    bench.metrics.append(
        Metric(
            f"false_barge_ins_{level}",
            "n",
            f"0 in {len(with_aec.energies)}",
            with_aec.false_barge_ins == 0,
            value=with_aec.false_barge_ins,
            n=len(with_aec.energies),
        )
    )
    detected = [delay for delay in barge_ins if delay is not None]
    share = len(detected) / len(barge_ins) if barge_ins else 0.0
    bench.metrics.append(
        Metric(
            f"true_barge_ins_{level}",
            "share",
            f"≥ {TARGETS['true_barge_ins']:g}",
            share >= TARGETS["true_barge_ins"],
            value=share,
            n=len(barge_ins),
        )
    )
    bench.metrics.append(
        distribution(f"barge_in_over_echo_ms_{level}", detected, limit=TARGETS["barge_in_ms"])
    )


async def cycles_phase(bench: Bench) -> None:
    """Start and end conversations: connect time, and resources before and after."""
    started: list[float] = []
    hass = bench.hass

    def on_started(_event: Event) -> None:
        started.append(time.monotonic())

    unsubscribe = hass.bus.async_listen(EVENT_SESSION_STARTED, on_started)
    try:
        for _ in range(WARM_CYCLES):
            await _cycle(bench)
        await _settle()
        before = resources()
        since = time.monotonic()
        starts = [await _cycle(bench) for _ in range(CYCLES)]
        await _settle()
        after = resources()
    finally:
        unsubscribe()
    connect = [1000 * (up - start) for start, up in zip(starts, started[-CYCLES:], strict=True)]
    metric = distribution("connect_ms", connect, limit=TARGETS["connect_ms"])
    metric.detail = _connect_breakdown(await bench.sim("record", since=since), starts)
    bench.metrics.insert(0, metric)
    growth = after["rss_mb"] - before["rss_mb"]
    met = (
        growth <= TARGETS["rss_growth_mb"]
        and after["threads"] <= before["threads"]
        and after["fds"] <= before["fds"]
    )
    bench.metrics.append(
        Metric(
            "rss_growth_mb",
            "MB",
            f"≤ {TARGETS['rss_growth_mb']:g} over {CYCLES}, threads/fds flat",
            met,
            value=growth,
            n=CYCLES,
            detail={"before": before, "after": after},
        )
    )


async def _cycle(bench: Bench) -> float:
    """Start a conversation and end it; return when the start was asked for."""
    start = time.monotonic()
    await bench.action("start_conversation")
    await bench.action("end_conversation")
    return start


async def _settle() -> None:
    """Let closing work finish and collect garbage before counting resources."""
    await asyncio.sleep(0.5)
    gc.collect()


def _connect_breakdown(record: dict[str, Any], starts: list[float]) -> dict[str, Any]:
    """Split the connect time by what the simulator saw: offer posted, channel up, updated."""
    parts: dict[str, list[float]] = {
        "to_offer_posted": [],
        "offer_to_channel_open": [],
        "channel_open_to_session_update": [],
        "session_update_to_updated": [],
    }
    for start, call in zip(starts, record["calls"][-len(starts) :], strict=False):
        created = first_after(call["server"], "session.created")
        update = first_after(call["client"], "session.update")
        updated = first_after(call["server"], "session.updated")
        if not (created and update and updated):
            continue
        parts["to_offer_posted"].append(call["created_at"] - start)
        parts["offer_to_channel_open"].append(created[0] - call["created_at"])
        parts["channel_open_to_session_update"].append(update[0] - created[0])
        parts["session_update_to_updated"].append(updated[0] - update[0])
    return {
        f"{name}_median_ms": round(1000 * statistics.median(values), 1)
        for name, values in parts.items()
        if values
    }


# --- The run ---------------------------------------------------------------------------------


async def _home(hass: HomeAssistant) -> None:
    """Give the model a fast entity: a template light backed by an input_boolean."""
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": {"kitchen": {}}})

    def action(service: str) -> dict[str, Any]:
        return {"action": service, "target": {"entity_id": "input_boolean.kitchen"}}

    light = {
        "name": "Kitchen light",
        "state": "{{ is_state('input_boolean.kitchen', 'on') }}",
        "turn_on": action("input_boolean.turn_on"),
        "turn_off": action("input_boolean.turn_off"),
    }
    assert await async_setup_component(hass, "template", {"template": [{"light": [light]}]})
    await hass.async_block_till_done()
    async_expose_entity(hass, "conversation", KITCHEN, should_expose=True)


async def _box(hass: HomeAssistant, sim: SimProcess) -> MockConfigEntry:
    """Set up a box on the virtual devices, in full duplex, pointed at the simulator."""
    devices = {"pulse": (MIC, SPEAKER), "sounddevice": ("default", "default")}[BACKEND]
    options = {
        CONF_DUPLEX: "full",
        CONF_IDLE_TIMEOUT: 600,
        CONF_LLM_HASS_API: ["assist"],
        CONF_TOOL_TIMEOUT: 5,
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="OpenAI (simulator)",
        version=RealtimeVoiceConfigFlow.VERSION,
        minor_version=RealtimeVoiceConfigFlow.MINOR_VERSION,
        data={CONF_API_KEY: sim.api_key, CONF_BASE_URL: sim.base_url},
        subentries_data=[box_data(BACKEND, devices[0], devices[1], options)],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _machine() -> dict[str, Any]:
    """Describe where the run happened."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return {
        "machine": f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "homeassistant": ha_version,
        "aiortc": aiortc.__version__,
        "backend": BACKEND,
        "mode": "quick" if QUICK else "full",
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


async def cost_phase(bench: Bench) -> None:
    """USD per minute of a 10-minute conversation, per model, with and without truncation."""
    for row in estimates():
        limit = USD_PER_MINUTE[row.model]
        bench.metrics.append(
            Metric(
                f"usd_per_min {row.model} truncation {row.truncation}",
                "USD/min",
                f"≤ {limit:g} (research estimate)",
                row.usd_per_minute <= limit,
                value=row.usd_per_minute,
                detail={
                    "cached_share": round(row.cached_share, 3),
                    "truncations": row.truncations,
                    "context_at_end": row.last_input_tokens,
                    **{
                        f"usd_per_min_{m}_min": round(v, 4)
                        for m, v in zip(LONGER, row.longer, strict=True)
                    },
                },
            )
        )


async def _phase(bench: Bench, name: str, run: Callable[[Bench], Any]) -> None:
    """Run one phase and note how long it took."""
    if name not in PHASES:
        return
    start = time.monotonic()
    await run(bench)
    bench.info[f"phase_{name}_s"] = round(time.monotonic() - start, 1)
    write(OUTPUT, bench.metrics, bench.info)  # a broken later phase leaves these behind


@pytest.mark.timeout(2400)  # a full run on a busy 2-core machine, all phases
async def test_bench(hass: HomeAssistant, tmp_path: Path) -> None:
    """Run every phase and write the results."""
    await _home(hass)
    async with SimProcess.run() as sim:
        entry = await _box(hass, sim)
        bench = Bench(hass, sim, tmp_path, [], _machine())
        await bench.action("start_conversation")
        await _phase(bench, "duplex", duplex_phase)
        await _phase(bench, "latency", latency_phase)
        await _phase(
            bench,
            "hearing",
            functools.partial(
                hearing_phase, replies=HEARING_REPLIES, late_replies=HEARING_LATE_REPLIES
            ),
        )
        await _phase(bench, "barge_in", barge_in_phase)
        await _phase(bench, "tools", tool_phase)
        await bench.action("end_conversation")
        await _phase(bench, "echo", echo_phase)
        await _phase(bench, "cycles", cycles_phase)
        await _phase(bench, "browser", browser_phase)
        await _phase(bench, "cost", cost_phase)
        assert await hass.config_entries.async_unload(entry.entry_id)
    write(OUTPUT, bench.metrics, bench.info)
