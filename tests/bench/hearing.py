"""Bench phase "hearing": whether what the speaker played is what the simulator said.

The simulator speaks espeak-ng replies; it keeps the samples of every audible frame it sends
(`capture`), and `speaker.monitor` is recorded in 5 ms blocks stamped on the same clock. Each
reply is aligned with its recording by cross-correlation, 100 ms at a time, which gives:
- wire→speaker: from the reply's first frame handed to aiortc to its first sample recorded;
- the correlation of the aligned recording with what was sent (1.0: the same waveform; Opus
  and a concealed frame take a little off);
- gaps inside speech: runs of digital silence (>= 1 ms of exact zeros) where the reply speaks;
- speech missing: 5 ms windows where the reply speaks and the recording is near silent;
- holes the sink gave: the same runs of zeros, between speech, in what the sink's playout
  handed the device thread (recorded as it pulled). A gap in the recording that the sink did
  not give is PulseAudio's: its buffer ran dry while the device thread was late to write.
Then a few replies start while the speaker sink is suspended, and it is resumed 500 ms after
the simulator began sending: are the first words heard?
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
import statistics
import subprocess
import time
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import numpy as np

from custom_components.realtime_voice.audio.playout import Playout
from tests.helpers.audio_helpers import MonitorClock
from tests.helpers.virtual_audio import SPEAKER, SPEAKER_MONITOR, STREAM_SETTLE

from .report import Metric, distribution

if TYPE_CHECKING:
    from .bench_session import Bench

RATE = 48000
FRAME = 960
WINDOW = 240
"""5 ms, the recorder's block."""
SPEECH_RMS = 300.0
"""A 5 ms window of the sent reply louder than this is speech."""
MISSING_SHARE = 0.1
"""A speech window recorded at less than this share of its sent level is missing."""
GAP_SAMPLES = 48
"""Exact zeros for this long (1 ms) inside speech is a gap: nothing real is that silent."""
CHUNK = 4800
"""Each 100 ms of a reply is aligned on its own..."""
DRIFT = 1440
"""...within 30 ms of the chunk before."""
STEADY_SENDER_MS = 20.0
"""A reply whose frames the simulator handed to aiortc at most this late was sent steadily."""
SEARCH_SECONDS = 3.0
"""How much later than sent a reply may be found in the recording."""
LATE_START_SECONDS = 0.5
"""How long the suspended sink stays asleep after the reply began."""
FIRST_WORDS_SECONDS = 0.5
NEXT_PIECE_SECONDS = 0.6
"""A piece of the first words is searched for this far after the one before: longer than a pause
between words, shorter than the phrase."""
FIRST_WORDS_CORRELATION = 0.8
"""The first words count as heard when they correlate at least this well with what was sent."""
REPLIES = (
    "Sure. The kitchen light is on, and the living room is warm and quiet tonight.",
    "Done. I turned off the hallway lamp.",
    "It is seven degrees outside, with light rain until the evening.",
)
ENDED = "output_audio_buffer.stopped|output_audio_buffer.cleared"


@dataclass(frozen=True, slots=True)
class SentFrame:
    """An audible frame the simulator handed to aiortc."""

    at: float
    pts: int
    samples: np.ndarray


@dataclass(slots=True)
class Heard:
    """One reply, aligned with its recording."""

    delay_ms: float
    late_sent_ms: float
    """The most a frame was handed to aiortc after its time (the simulator's own jitter)."""
    correlation: float
    gaps: int
    missing_ms: float
    first_words: float
    """The worst correlation of a piece of the reply's first FIRST_WORDS_SECONDS of speech with
    the recording, each piece found after the one before (see _first_words)."""
    sink_holes: int | None = None
    """Runs of zeros between speech in what the sink gave the device thread for this reply."""


async def hearing_phase(bench: Bench, replies: int, late_replies: int) -> None:
    """Speak `replies` replies on a running speaker, then `late_replies` into a waking one."""
    await bench.sim("voice", kind="speech")
    await bench.sim("vad", on=False)  # the replies alone: nobody talks over them
    await bench.sim("capture", on=True)
    before = _speaker(bench)
    given: list[tuple[float, bytes]] = []
    original_pull = Playout.pull

    def pull(playout: Playout, size: int) -> bytes:
        # Looked up at each call (the sink's own pull is bound when its device opens).
        data = original_pull(playout, size)
        given.append((time.monotonic(), data))
        return data

    try:
        with MonitorClock(SPEAKER_MONITOR) as recorder:
            # Or the first reply starts into the stall the recorder's new stream causes.
            await asyncio.sleep(STREAM_SETTLE)
            with patch.object(Playout, "pull", pull):
                steady = await _replies(bench, replies, late=False)
            after_steady = _speaker(bench)
            late = await _replies(bench, late_replies, late=True)
            await asyncio.sleep(0.5)
        sent = await bench.sim("sent_audio", since=steady[0][0])
    finally:
        await bench.sim("capture", on=False)
        await bench.sim("vad", on=True)
        await bench.sim("voice", kind="tone")
    frames = [
        SentFrame(at, pts, np.frombuffer(base64.b64decode(data), np.int16))
        for at, pts, data in sent["frames"]
    ]
    steady_heard = [_hear(frames, recorder, start, end) for start, end in steady]
    for heard, (start, end) in zip(steady_heard, steady, strict=True):
        heard.sink_holes = _holes(given, start, end + SEARCH_SECONDS)
    late_heard = [_hear(frames, recorder, start, end) for start, end in late]
    _metrics(
        bench,
        steady=steady_heard,
        late=late_heard,
        before=before,
        after_steady=after_steady,
        after=_speaker(bench),
    )


async def _replies(bench: Bench, count: int, *, late: bool) -> list[tuple[float, float]]:
    """Have the assistant say count replies; return when each was sent (start, end)."""
    spans = []
    rng = np.random.default_rng(3 if late else 4)
    for index in range(count):
        started = (await bench.sim("count", side="server", event="output_audio_buffer.started"))[
            "count"
        ]
        await bench.sim("script", turns=[["reply", REPLIES[index % len(REPLIES)]]])
        if late:
            await _suspend(suspended=True)
        since = time.monotonic()
        await bench.action("send_text", text="How is the house?")
        begun = await bench.sim(
            "wait", side="server", event="output_audio_buffer.started", count=started + 1
        )
        # Counted once this reply is under way: an end of earlier audio may come late.
        ended = 0
        for kind in ENDED.split("|"):  # count takes one kind, wait several
            ended += (await bench.sim("count", side="server", event=kind))["count"]
        if late:
            await asyncio.sleep(max(0.0, begun["at"] + LATE_START_SECONDS - time.monotonic()))
            await _suspend(suspended=False)
        done = await bench.sim("wait", side="server", event=ENDED, count=ended + 1, timeout=30)
        spans.append((max(since, begun["at"]), done["at"]))
        # Pauses of different lengths, so replies start at every phase of the device's blocks.
        await asyncio.sleep(0.6 + float(rng.uniform(0.0, 0.6)) + (1.0 if late else 0.0))
    return spans


async def _suspend(*, suspended: bool) -> None:
    """Suspend or resume the virtual speaker (its streams stop and resume taking audio)."""
    process = await asyncio.create_subprocess_exec(
        "pactl", "suspend-sink", SPEAKER, str(int(suspended))
    )
    if await process.wait():
        raise subprocess.CalledProcessError(process.returncode or 1, "pactl suspend-sink")


def _speaker(bench: Bench) -> dict[str, Any]:
    """Return the speaker sink's counters now."""
    return dict(bench.session.audio_diagnostics()["speaker"])


def _sent(frames: list[SentFrame], start: float, end: float) -> tuple[float, np.ndarray]:
    """Return when the reply began and its samples, each frame in its place by its pts."""
    mine = [frame for frame in frames if start - 0.01 <= frame.at <= end + 0.05]
    first = mine[0]
    signal = np.zeros(mine[-1].pts - first.pts + FRAME, np.int16)
    for frame in mine:
        offset = frame.pts - first.pts
        signal[offset : offset + frame.samples.size] = frame.samples
    # The first sample goes on the wire with its frame: wire→speaker starts at the handover,
    # after the sender's 20 ms of packetization, as the click latency does.
    return first.at, signal


def _recorded(recorder: MonitorClock, start: float, size: int) -> tuple[float, np.ndarray]:
    """Return the recording from the first block that ended after start, size samples long."""
    first = next(i for i, (at, _) in enumerate(recorder.blocks) if at >= start)
    samples = np.concatenate(recorder.samples[first : first + size // WINDOW + 1])
    return recorder.blocks[first][0] - WINDOW / RATE, samples[:size]


def _align(sent: np.ndarray, heard: np.ndarray) -> tuple[int, float]:
    """Return the lag of sent in heard, and the correlation there."""
    size = 1 << int(np.ceil(np.log2(heard.size + sent.size)))
    spectrum = np.fft.rfft(heard.astype(np.float64), size) * np.conj(
        np.fft.rfft(sent.astype(np.float64), size)
    )
    lags = np.fft.irfft(spectrum, size)[: heard.size - sent.size + 1]
    lag = int(np.argmax(lags))
    return lag, _correlation(sent, heard[lag : lag + sent.size])


def _find(piece: np.ndarray, heard: np.ndarray) -> tuple[int, float]:
    """Return where a short piece is in heard, and the correlation there.

    Normalised at every lag: a raw cross-correlation prefers any louder stretch to the right
    one when the piece is only tens of milliseconds long.
    """
    size = 1 << int(np.ceil(np.log2(heard.size + piece.size)))
    raw = np.fft.irfft(
        np.fft.rfft(heard.astype(np.float64), size)
        * np.conj(np.fft.rfft(piece.astype(np.float64), size)),
        size,
    )[: heard.size - piece.size + 1]
    energy = np.concatenate(([0.0], np.cumsum(heard.astype(np.float64) ** 2)))
    window = energy[piece.size :] - energy[: -piece.size]
    norms = np.sqrt(np.maximum(window, 1.0) * float(np.dot(piece.astype(np.float64), piece)))
    lag = int(np.argmax(raw / norms))
    return lag, _correlation(piece, heard[lag : lag + piece.size])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norm = float(np.sqrt(np.dot(a64, a64) * np.dot(b64, b64)))
    return float(np.dot(a64, b64)) / norm if norm else 0.0


def _windows(samples: np.ndarray) -> np.ndarray:
    """Return the RMS of each 5 ms window."""
    usable = samples[: samples.size // WINDOW * WINDOW].astype(np.float64)
    return np.sqrt(np.mean(usable.reshape(-1, WINDOW) ** 2, axis=1))


def _zero_runs(samples: np.ndarray) -> list[tuple[int, int]]:
    """Return the 5 ms windows just before and after each run of >= GAP_SAMPLES exact zeros."""
    silent = np.concatenate(([0], (samples == 0).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(silent))
    return [
        (begin // WINDOW - 1, (end - 1) // WINDOW + 1)
        for begin, end in zip(edges[::2], edges[1::2], strict=True)
        if end - begin >= GAP_SAMPLES
    ]


def _gaps(heard: np.ndarray, speaking: np.ndarray) -> int:
    """Count runs of >= GAP_SAMPLES exact zeros in heard inside speech.

    Inside: the reply speaks in every 5 ms window the run touches and in the one on each side,
    so a pause between words that the alignment placed a little off is not a gap.
    """
    return sum(
        1 for first, last in _zero_runs(heard) if first >= 0 and speaking[first : last + 1].all()
    )


def _holes(given: list[tuple[float, bytes]], start: float, end: float) -> int:
    """Count runs of zeros with speech on both sides in what the sink gave between start and end.

    What the sink gives has no reference to align with; speech right before and after a run of
    zeros (a 5 ms window above SPEECH_RMS on each side) is what makes it a hole, not a pause.
    """
    samples = np.frombuffer(b"".join(data for at, data in given if start <= at <= end), np.int16)
    loud = _windows(samples) > SPEECH_RMS
    return sum(
        1
        for before, after in _zero_runs(samples)
        if before >= 0 and after < loud.size and loud[before] and loud[after]
    )


def _follow(sent: np.ndarray, heard: np.ndarray, lag: int) -> np.ndarray:
    """Return heard aligned with sent chunk by chunk, each chunk's lag searched near the last.

    The lag moves within a reply: a concealed frame or a held start adds delay, silence skipped
    in a pause between words takes it back. One lag for the whole reply would compare words
    with the pauses next to them.
    """
    aligned = np.zeros(sent.size, np.int16)
    for begin in range(0, sent.size, CHUNK):
        piece = sent[begin : begin + CHUNK]
        low = max(0, lag - DRIFT)
        high = min(heard.size - begin - piece.size, lag + DRIFT)
        if high < low:
            break
        if _windows(piece).max(initial=0.0) > SPEECH_RMS:
            found, _ = _align(piece, heard[begin + low : begin + high + piece.size])
            lag = low + found
        aligned[begin : begin + piece.size] = heard[begin + lag : begin + lag + piece.size]
    return aligned


def _hear(frames: list[SentFrame], recorder: MonitorClock, start: float, end: float) -> Heard:
    """Align one reply with the recording and measure what of it was heard."""
    sent_at, sent = _sent(frames, start, end)
    heard_at, heard = _recorded(recorder, sent_at, sent.size + int(RATE * SEARCH_SECONDS))
    lag, _ = _find(sent[: int(RATE * FIRST_WORDS_SECONDS)], heard)
    aligned = _follow(sent, heard, lag)
    correlation = _correlation(sent, aligned)
    sent_levels, heard_levels = _windows(sent), _windows(aligned)
    speaking = sent_levels > SPEECH_RMS
    missing = speaking & (heard_levels < MISSING_SHARE * sent_levels)
    mine = [frame for frame in frames if start - 0.01 <= frame.at <= end + 0.05]
    due = [mine[0].at + (frame.pts - mine[0].pts) / RATE for frame in mine]
    return Heard(
        delay_ms=1000 * (heard_at + lag / RATE - sent_at),
        late_sent_ms=1000 * max(frame.at - at for frame, at in zip(mine, due, strict=True)),
        correlation=correlation,
        gaps=_gaps(aligned, speaking),
        missing_ms=5.0 * int(missing.sum()),
        first_words=_first_words(mine, heard),
    )


def _first_words(mine: list[SentFrame], heard: np.ndarray) -> float:
    """Return how well the reply's first words are in the recording, in order.

    Its first FIRST_WORDS_SECONDS of speech (the audible frames, pauses left out) in pieces of
    at most CHUNK that do not span a pause, each searched for after the one before: a sink that
    woke late plays every word but, catching up, shortens the pauses between them, which a
    single alignment with the reply's own timing would count against it.
    """
    pieces: list[np.ndarray] = []
    run: list[np.ndarray] = []
    spoken = 0
    for index, frame in enumerate(mine):
        run.append(frame.samples)
        spoken += frame.samples.size
        last = index + 1 == len(mine) or mine[index + 1].pts != frame.pts + FRAME
        if last or sum(part.size for part in run) >= CHUNK or spoken >= RATE * FIRST_WORDS_SECONDS:
            pieces.append(np.concatenate(run))
            run = []
        if spoken >= RATE * FIRST_WORDS_SECONDS:
            break
    position, worst, reach = 0, 1.0, SEARCH_SECONDS
    for piece in pieces:
        # A lone frame at a word's edge is too short to be found for sure; its neighbours are.
        if piece.size < 2 * FRAME or _windows(piece).max(initial=0.0) <= SPEECH_RMS:
            continue
        stop = min(heard.size, position + int(RATE * reach) + piece.size)
        reach = NEXT_PIECE_SECONDS
        if stop - position < piece.size:
            return 0.0
        lag, correlation = _find(piece, heard[position:stop])
        worst = min(worst, correlation)
        position += lag + piece.size
    return worst


def _metrics(
    bench: Bench,
    *,
    steady: list[Heard],
    late: list[Heard],
    before: dict[str, Any],
    after_steady: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """Add the phase's rows."""

    def change(key: str, start: dict[str, Any], end: dict[str, Any]) -> float:
        return round(float(end.get(key, 0)) - float(start.get(key, 0)), 1)

    counters = ("underruns", "concealed_ms", "dropped_ms", "skipped_silence_ms")
    every = steady
    # The targets hold on a steady network: a reply whose frames the simulator itself handed
    # over late (a loaded machine starves its process) is reported in the details only.
    steady = [heard for heard in every if heard.late_sent_ms <= STEADY_SENDER_MS]
    gaps = sum(heard.gaps for heard in steady)
    bench.metrics.append(
        Metric(
            "hearing_gaps_in_speech",
            "n",
            f"0 (replies sent on time ±{STEADY_SENDER_MS:g} ms)",
            gaps == 0 if steady else None,
            value=gaps,
            n=len(steady),
            detail={
                "replies": len(every),
                "by_reply": [heard.gaps for heard in every],
                "sink_holes_by_reply": [heard.sink_holes for heard in every],
                "simulator_late_ms_by_reply": [round(heard.late_sent_ms) for heard in every],
                **{f"sink_{key}": change(key, before, after_steady) for key in counters},
                "margin_ms": after_steady.get("margin_ms"),
            },
        )
    )
    missing = sum(heard.missing_ms for heard in steady)
    bench.metrics.append(
        Metric(
            "hearing_speech_missing_ms",
            "ms",
            "0",
            missing == 0 if steady else None,
            value=missing,
            n=len(steady),
            detail={"by_reply": [heard.missing_ms for heard in every]},
        )
    )
    metric = distribution(
        "hearing_correlation", [heard.correlation for heard in steady], limit=1.0, unit="r"
    )
    metric.target, metric.met = "reported", None if not steady else True
    metric.value = min((heard.correlation for heard in steady), default=None)
    metric.detail = {"by_reply": [round(heard.correlation, 3) for heard in every]}
    bench.metrics.append(metric)
    metric = distribution(
        "hearing_wire_to_speaker_ms", [heard.delay_ms for heard in steady], limit=50
    )
    metric.detail = {"by_reply": [round(heard.delay_ms, 1) for heard in every]}
    bench.metrics.append(metric)
    heard_first = [heard.first_words >= FIRST_WORDS_CORRELATION for heard in late]
    bench.metrics.append(
        Metric(
            "late_sink_first_words_heard",
            "share",
            f"1.0 (sink wakes {1000 * LATE_START_SECONDS:g} ms late)",
            all(heard_first) if late else None,
            value=statistics.mean(heard_first) if late else None,
            n=len(late),
            detail={
                "first_words_correlation": [round(heard.first_words, 3) for heard in late],
                "speech_missing_ms": [heard.missing_ms for heard in late],
                **{f"sink_{key}": change(key, after_steady, after) for key in counters},
                "sink_held_ms": after.get("held_ms"),
            },
        )
    )
