"""The browser beside us: Chromium running a WebRTC Realtime client against the same simulator.

What the seed did (a kiosk browser holding the call), measured the way the bench measures the
integration: CPU seconds per second of conversation and PSS, over the same window, with the
same speech going in and the simulator's replies coming out.

- Chromium: Debian's, through Playwright (as `tests/browser`), headless, its microphone a fake
  device looping the speech WAV, WebRTC's default audio processing on (echo cancellation, noise
  suppression, gain control: what OpenAI's browser client asks for). The page does what OpenAI's
  WebRTC quickstart does: an ephemeral key from `POST /v1/realtime/client_secrets`, the offer
  as raw SDP to `POST /v1/realtime/calls`, the answer applied, the remote audio on an `<audio>`
  element, the `oai-events` channel open. CPU and PSS are summed over Chromium's processes
  (browser, renderer, GPU, network, audio and utility services), read from /proc.
- The integration: this process (Home Assistant with the box) during a conversation on the
  PulseAudio virtual devices with the same WAV played into the microphone in a loop, less the
  same process idle; its memory is what the call adds plus what importing the integration's
  modules adds to a bare Home Assistant (measured in a fresh interpreter).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import dataclasses
from dataclasses import dataclass
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import time
from typing import Any, Final
import wave

import aiohttp
from aiohttp import web

from tests.browser.test_dashboard import CHROMIUM, CHROMIUM_FLAGS
from tests.helpers.loopback_http import serve_on_loopback

FLAGS: Final = [
    *CHROMIUM_FLAGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
SAMPLE_SECONDS: Final = 1.0

PAGE: Final = """<!doctype html>
<html><body><audio id="remote" autoplay></audio>
<script>
window.replies = 0;
window.state = "new";
async function call(base, key) {
  const pc = new RTCPeerConnection();
  pc.ontrack = (event) => { document.getElementById("remote").srcObject = event.streams[0]; };
  // Defaults: echo cancellation, noise suppression and gain control on, as OpenAI's client.
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  pc.addTrack(mic.getTracks()[0], mic);
  const channel = pc.createDataChannel("oai-events");
  channel.onmessage = (message) => {
    if (JSON.parse(message.data).type === "response.done") window.replies += 1;
  };
  channel.onopen = () => { window.state = "open"; };
  await pc.setLocalDescription(await pc.createOffer());
  const answer = await fetch(base + "/v1/realtime/calls", {
    method: "POST",
    body: pc.localDescription.sdp,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/sdp" },
  });
  await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  window.pc = pc;
}
</script></body></html>
"""


@dataclass(frozen=True, slots=True)
class Usage:
    """What one side used over the window."""

    cpu_s_per_s: float
    pss_mb: float
    replies: int


async def chromium_usage(
    base_url: str, api_key: str, session: dict[str, Any], wav: Path, seconds: float
) -> Usage:
    """Hold a call in Chromium for seconds (after it settled) and return what it used."""
    from playwright.async_api import async_playwright  # noqa: PLC0415 - only this phase needs it

    key = await _ephemeral_key(base_url, api_key, session)
    async with _page_server() as page_url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-audio-capture={wav}"]
        )
        try:
            page = await browser.new_page()
            await page.goto(page_url)
            await page.evaluate("([base, key]) => call(base, key)", [base_url, key])
            await page.wait_for_function("window.state === 'open'", timeout=30_000)
            await asyncio.sleep(3)  # the first turn under way, as on the integration's side
            replies = await page.evaluate("window.replies")
            cpu, pss = await _measure(_chromium_processes, seconds)
            replies = await page.evaluate("window.replies") - replies
        finally:
            await browser.close()
    return Usage(cpu, pss, replies)


async def integration_usage(
    converse: Callable[[], contextlib.AbstractAsyncContextManager[Callable[[], int]]],
    wav: Path,
    seconds: float,
    mic_feed: str,
) -> Usage:
    """Measure this process idle, then in a conversation with wav looped into the microphone.

    converse() is the bench's conversation: entered, the box talks; it yields a function that
    returns how many replies were said so far.
    """
    idle_cpu, idle_pss = await _measure(lambda: [os.getpid()], seconds / 2)
    async with converse() as replies_so_far, _looped(wav, mic_feed):
        await asyncio.sleep(3)
        before = replies_so_far()
        cpu, pss = await _measure(lambda: [os.getpid()], seconds)
        replies = replies_so_far() - before
    return Usage(cpu - idle_cpu, max(0.0, pss - idle_pss) + integration_import_mb(), replies)


def integration_import_mb() -> float:
    """Return what importing the integration adds to a bare Home Assistant's PSS, in MB."""
    code = (
        "import pathlib, homeassistant.core, homeassistant.helpers.llm, homeassistant.components."
        "assist_pipeline\n"
        "def pss():\n"
        "    text = pathlib.Path('/proc/self/smaps_rollup').read_text()\n"
        "    return next(int(l.split()[1]) for l in text.splitlines() if l.startswith('Pss:'))\n"
        "before = pss()\n"
        "import custom_components.realtime_voice.conversation, "
        "custom_components.realtime_voice.audio.echo\n"
        "print((pss() - before) / 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=Path.cwd()
    )
    return float(done.stdout.strip().splitlines()[-1])


async def _ephemeral_key(base_url: str, api_key: str, session: dict[str, Any]) -> str:
    """Mint an ek_ key as a browser app's server does; the page never sees the real key."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/v1/realtime/client_secrets",
            json={"session": session},
            headers={"Authorization": f"Bearer {api_key}"},
        ) as response,
    ):
        response.raise_for_status()
        value: str = (await response.json())["value"]
    return value


@contextlib.asynccontextmanager
async def _page_server() -> AsyncIterator[str]:
    """Serve the page on loopback (a secure context for getUserMedia); yield its URL."""

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    async with serve_on_loopback(app) as url:
        yield f"{url}/"


@contextlib.asynccontextmanager
async def _looped(wav: Path, device: str) -> AsyncIterator[None]:
    """Play wav into the microphone again and again, as Chromium's fake device loops its file."""

    async def loop() -> None:
        while True:
            process = await asyncio.create_subprocess_exec("paplay", f"--device={device}", str(wav))
            try:
                await process.wait()
            except asyncio.CancelledError:
                process.kill()
                await process.wait()
                raise

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _measure(pids: Callable[[], list[int]], seconds: float) -> tuple[float, float]:
    """Return CPU seconds per second and the median PSS (MB) of the processes over seconds."""
    start_cpu = _cpu_seconds(pids())
    started = time.monotonic()
    samples: list[float] = []
    while time.monotonic() - started < seconds:
        samples.append(sum(_pss_mb(pid) for pid in pids()))
        await asyncio.sleep(SAMPLE_SECONDS)
    end_cpu = _cpu_seconds(pids())
    wall = time.monotonic() - started
    used = sum(end_cpu[pid] - start_cpu.get(pid, 0.0) for pid in end_cpu)
    return used / wall, statistics.median(samples)


def _chromium_processes() -> list[int]:
    """Return Chromium's processes: descendants of this one running the chromium binary."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            with contextlib.suppress(OSError):
                if "chromium" in str(Path(f"/proc/{child}/exe").readlink()):
                    found.append(child)
    return found


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    result = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            result[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return result


def _question(workdir: Path) -> Path:
    """Return the question as a 48 kHz WAV followed by 3 s of quiet: a turn every few seconds."""
    from tests.helpers.virtual_audio import speech_wav  # noqa: PLC0415

    wav = workdir / "question-48k.wav"
    spoken = speech_wav(workdir / "question.wav", SPEECH)
    subprocess.run(["sox", str(spoken), "-r", "48000", str(wav), "pad", "0", "3"], check=True)
    return wav


def _samples(wav: Path) -> Any:
    """Return a 48 kHz mono 16-bit WAV's samples (the bench's codec floor takes them)."""
    import numpy as np  # noqa: PLC0415

    with wave.open(str(wav)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)


def _pss_mb(pid: int) -> float:
    with contextlib.suppress(OSError, StopIteration):
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return (
            next(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))
            / 1024
        )
    return 0.0


SPEECH: Final = "What is the weather like today in the kitchen?"
TARGETS: Final = {"cpu_vs_chromium": 0.6, "cpu_vs_floor": 6.0, "memory_vs_chromium": 0.1}


async def browser_phase(bench: Any) -> None:
    """Chromium and the integration, the same speech in, the same simulator answering."""
    from homeassistant.core import Event  # noqa: PLC0415 - the bench's process has it

    from custom_components.realtime_voice.const import EVENT_TRANSCRIPT  # noqa: PLC0415
    from tests.helpers.virtual_audio import MIC_FEED  # noqa: PLC0415

    from .bench_session import BACKEND, QUICK, codec_floor  # noqa: PLC0415 - it imports this
    from .cpu_budget import parts_usage  # noqa: PLC0415 - with the import above
    from .report import Metric  # noqa: PLC0415

    seconds = 10.0 if QUICK else 30.0
    wav = await asyncio.to_thread(_question, bench.workdir)

    @contextlib.asynccontextmanager
    async def converse() -> AsyncIterator[Callable[[], int]]:
        said: list[Event[Any]] = []
        unsubscribe = bench.hass.bus.async_listen(
            EVENT_TRANSCRIPT,
            lambda event: said.append(event) if event.data["role"] == "assistant" else None,
        )
        await bench.action("start_conversation")
        try:
            yield lambda: len(said)
        finally:
            await bench.action("end_conversation")
            unsubscribe()

    ours = await integration_usage(converse, wav, seconds, MIC_FEED)
    session = {"type": "realtime", "model": bench.session.settings.model}
    theirs = await chromium_usage(bench.sim.base_url, bench.sim.api_key, session, wav, seconds)
    samples = _samples(wav)
    floor = codec_floor(samples, samples)
    usage = await parts_usage(seconds, BACKEND)
    engine = usage.pop("engine")
    parts = {"opus": floor, **usage}
    cpu_ratio, memory_ratio = ours.cpu_s_per_s / theirs.cpu_s_per_s, ours.pss_mb / theirs.pss_mb
    parts_ratio = sum(parts.values()) / theirs.cpu_s_per_s
    detail = {
        "integration": dataclasses.asdict(ours),
        "chromium": dataclasses.asdict(theirs),
        "opus_floor_s_per_s": round(floor, 5),
        "window_s": seconds,
    }
    bench.metrics.extend(
        [
            Metric(
                "cpu_vs_chromium",
                "ratio",
                f"≤ {TARGETS['cpu_vs_chromium']:g}",
                cpu_ratio <= TARGETS["cpu_vs_chromium"],
                value=round(cpu_ratio, 3),
                detail=detail,
            ),
            Metric(
                "cpu_vs_opus_floor",
                "ratio",
                f"≤ {TARGETS['cpu_vs_floor']:g}",
                ours.cpu_s_per_s / floor <= TARGETS["cpu_vs_floor"],
                value=round(ours.cpu_s_per_s / floor, 2),
            ),
            # What the ratio to Chromium would be if the integration's own code cost nothing:
            # the codec, aiortc carrying the packets, the backend moving the audio (cpu_budget).
            Metric(
                "parts_vs_chromium",
                "ratio",
                f"≤ {TARGETS['cpu_vs_chromium']:g}",
                parts_ratio <= TARGETS["cpu_vs_chromium"],
                value=round(parts_ratio, 3),
                detail={
                    **{f"{name}_s_per_s": round(value, 4) for name, value in parts.items()},
                    "ours_beyond_parts_s_per_s": round(ours.cpu_s_per_s - sum(parts.values()), 4),
                    # The parts together in one process, as the integration runs them, without
                    # Home Assistant: what sharing the process (threads, the GIL) adds to them.
                    "engine_s_per_s": round(engine, 4),
                    "parts_vs_opus_floor": round(sum(parts.values()) / floor, 2),
                },
            ),
            Metric(
                "memory_vs_chromium",
                "ratio",
                f"≤ {TARGETS['memory_vs_chromium']:g}",
                memory_ratio <= TARGETS["memory_vs_chromium"],
                value=round(memory_ratio, 3),
            ),
        ]
    )


if __name__ == "__main__":  # a quick look by hand: python -m tests.bench.chromium BASE KEY WAV
    usage = asyncio.run(
        chromium_usage(sys.argv[1], sys.argv[2], {"type": "realtime"}, Path(sys.argv[3]), 10)
    )
    print(json.dumps(dataclasses.asdict(usage)))  # noqa: T201
