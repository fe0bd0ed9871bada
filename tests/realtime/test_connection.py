"""RealtimeConnection against the simulator: a real aiortc peer over loopback, real Opus audio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
import json
import socket
import time

import aiohttp
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
import numpy as np
import pytest

from custom_components.realtime_voice.realtime.connection import (
    CloseReason,
    RealtimeConnection,
    Timeouts,
)
from custom_components.realtime_voice.realtime.errors import (
    AuthenticationError,
    ConnectError,
    NotConnectedError,
    ProtocolError,
    QuotaError,
    RateLimitError,
)
from custom_components.realtime_voice.realtime.events import (
    AssistantTranscriptDone,
    ErrorEvent,
    FunctionCall,
    InputAudioCommitted,
    InputTranscriptCompleted,
    OtherEvent,
    OutputAudioCleared,
    OutputAudioStarted,
    OutputAudioStopped,
    ResponseDone,
    ServerEvent,
    SessionCreated,
    SpeechStarted,
    SpeechStopped,
)
from custom_components.realtime_voice.realtime.http import check_api_key
from custom_components.realtime_voice.realtime.responses import ResponseRequest
from custom_components.realtime_voice.realtime.session_config import SessionConfig, TurnDetection
from tests.helpers.error_log import ErrorLog
from tests.helpers.loopback_http import serve_on_loopback
from tests.simulator import CallFunction, CallFunctions, Reply, Simulator
from tests.simulator.voice import PlaybackTrack, tone

pytestmark = pytest.mark.usefixtures("loopback_ice")

CONFIG = SessionConfig(
    instructions="Be brief.",
    turn_detection=TurnDetection(silence_duration_ms=300),
)


class Recorder:
    """Collects what the connection hands its owner, with bounded waits."""

    def __init__(self) -> None:
        self.events: list[ServerEvent] = []
        self.closed: list[tuple[CloseReason, str]] = []
        self._changed = asyncio.Event()

    def on_event(self, event: ServerEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def on_closed(self, reason: CloseReason, detail: str) -> None:
        self.closed.append((reason, detail))
        self._changed.set()

    def of[E: ServerEvent](self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    async def wait_for[E: ServerEvent](
        self, kind: type[E], *, index: int = 0, timeout: float = 10.0
    ) -> E:
        def probe() -> E | None:
            found = self.of(kind)
            return found[index] if len(found) > index else None

        return await self.until(probe, timeout)

    async def wait_closed(self, timeout: float = 10.0) -> tuple[CloseReason, str]:
        return await self.until(lambda: self.closed[0] if self.closed else None, timeout)

    async def until[T](self, probe: Callable[[], T | None], timeout: float) -> T:
        async with asyncio.timeout(timeout):
            while (result := probe()) is None:
                self._changed.clear()
                await self._changed.wait()
            return result


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@asynccontextmanager
async def connected(
    simulator: Simulator | str,
    http: aiohttp.ClientSession,
    recorder: Recorder,
    *,
    timeouts: Timeouts | None = None,
    config: SessionConfig = CONFIG,
    api_key: str | None = None,
    on_event: Callable[[ServerEvent], None] | None = None,
    on_audio: Callable[[bytes], None] | None = None,
) -> AsyncIterator[tuple[RealtimeConnection, PlaybackTrack]]:
    """Open a connection with a microphone the test can play into; always close both.

    `simulator` may be a base URL instead, for endpoints that are not the simulator.
    """
    microphone = PlaybackTrack()
    try:
        connection = await RealtimeConnection.open(
            http,
            base_url=simulator if isinstance(simulator, str) else simulator.base_url,
            api_key=api_key or getattr(simulator, "api_key", "sk-test"),
            session=config,
            audio_track=microphone,
            on_event=on_event or recorder.on_event,
            on_closed=recorder.on_closed,
            on_audio=on_audio,
            timeouts=timeouts,
        )
        try:
            yield connection, microphone
        finally:
            await connection.close()
    finally:
        microphone.stop()


async def _remote_energy(connection: RealtimeConnection, seconds: float) -> list[float]:
    """Read the assistant's audio track for a while; return the RMS of each frame."""
    assert connection.remote_audio is not None
    energies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await asyncio.wait_for(connection.remote_audio.recv(), 2)
        samples = frame.to_ndarray().astype(np.float64)
        energies.append(float(np.sqrt(np.mean(samples**2))))
    return energies


async def test_connects_and_configures_the_session(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """The call is created, the first event is session.created, session.update is applied."""
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        call = await simulator.wait_for_call()
        assert connection.call_id is not None
        assert connection.call_id.startswith("rtc_")
        assert isinstance(await recorder.wait_for(SessionCreated), SessionCreated)
        assert isinstance(recorder.events[0], SessionCreated)

        effective = await connection.update_session(CONFIG)

        assert effective["instructions"] == "Be brief."
        assert effective["audio"]["output"]["voice"] == "marin"
        sent = await call.wait_for_client_event("session.update")
        assert sent["session"]["type"] == "realtime"
        assert "model" not in sent["session"]
        assert sent["event_id"]
    await call.wait_closed()
    assert call.hung_up


async def test_a_rejected_event_is_matched_to_what_was_sent(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """A beta-shaped update gets an error naming its param, tied to the client event."""
    simulator.allow_invalid_client_events = True
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        # The raw path, as a client that sends a beta-shaped event would.
        event_id = connection._send({"type": "session.update", "session": {"voice": "alloy"}})
        error = await recorder.wait_for(ErrorEvent)
    assert error.client_event_id == event_id
    assert error.client_event_type == "session.update"
    assert error.param is not None
    assert error.message


async def test_a_spoken_turn(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """User audio gives VAD events and a transcript; the reply is audio plus its transcript."""
    simulator.script(Reply("The kitchen light is on."))
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, microphone):
        await connection.update_session(CONFIG)
        microphone.play(tone(440, 0.8))
        await recorder.wait_for(SpeechStarted)
        await recorder.wait_for(SpeechStopped)
        started = await recorder.wait_for(OutputAudioStarted)
        energy = await _remote_energy(connection, 0.6)
        said = await recorder.wait_for(AssistantTranscriptDone)
        done = await recorder.wait_for(ResponseDone)
        await recorder.wait_for(OutputAudioStopped)
        heard = await recorder.wait_for(InputTranscriptCompleted)
        committed = await recorder.wait_for(InputAudioCommitted)

    assert said.transcript == "The kitchen light is on."
    assert heard.transcript
    assert committed.item_id == heard.item_id  # one user item: committed, then transcribed
    assert done.status == "completed"
    assert done.response_id == started.response_id
    assert done.usage.output_audio > 0
    assert done.usage.input_audio > 0
    assert max(energy) > 1000, "the reply's audio reached the client's track"


async def test_the_reply_as_opus_packets_to_a_handler(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """Opened with on_audio, as a conversation is: the reply's packets go to the handler.

    They come in order as they arrive and decode to the reply; the track carries no frame of it.
    """
    simulator.script(Reply("The kitchen light is on."))
    recorder = Recorder()
    packets: list[bytes] = []
    async with connected(simulator, http, recorder, on_audio=packets.append) as (
        connection,
        microphone,
    ):
        await connection.update_session(CONFIG)
        microphone.play(tone(440, 0.8))
        await recorder.wait_for(OutputAudioStopped)
        assert connection.remote_audio is not None
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(connection.remote_audio.recv(), 0.3)
    decoder = OpusDecoder()  # aiortc's own, as the track would have decoded them
    heard = [
        float(np.sqrt(np.mean(frame.to_ndarray().astype(np.float64) ** 2)))
        for index, payload in enumerate(packets)
        for frame in decoder.decode(JitterFrame(payload, 960 * index))
    ]
    assert len(heard) == len(packets) > 25  # the reply's 20 ms frames, each decoded
    assert max(heard) > 1000, "the reply's audio reached the handler"


async def test_barge_in_cancels_the_reply(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """Speech while the assistant talks cancels the response and clears its audio."""
    simulator.script(Reply("This is a long answer that the user will interrupt halfway."))
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, microphone):
        await connection.update_session(CONFIG)
        microphone.play(tone(440, 0.6))
        await recorder.wait_for(OutputAudioStarted)
        microphone.play(tone(440, 0.6))
        cleared = await recorder.wait_for(OutputAudioCleared)
        done = await recorder.wait_for(ResponseDone)
    assert done.status == "cancelled"
    assert done.reason == "turn_detected"
    assert cleared.response_id == done.response_id


async def test_function_call_round_trip(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """The model's call arrives typed; the output plus response.create gets a spoken answer."""
    simulator.script(CallFunction("HassTurnOn", {"name": "kitchen light"}), Reply("Done."))
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        await connection.update_session(CONFIG)
        call = await simulator.wait_for_call()
        connection.add_user_text("Turn on the kitchen light")
        connection.create_response()
        function_call = await recorder.wait_for(FunctionCall)
        assert function_call.name == "HassTurnOn"
        assert json.loads(function_call.arguments) == {"name": "kitchen light"}
        await recorder.wait_for(ResponseDone)

        connection.send_function_output(function_call.call_id, '{"success": true}')
        connection.create_response()
        answer = await recorder.wait_for(AssistantTranscriptDone)
    assert answer.transcript == "Done."
    output = await call.wait_for_client_event("conversation.item.create", index=1)
    assert output["item"] == {
        "type": "function_call_output",
        "call_id": function_call.call_id,
        "output": '{"success": true}',
    }


async def test_parallel_calls_and_a_response_without_tools(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """Two calls arrive in one response; a response.create that bans tools gets words."""
    simulator.script(
        CallFunctions((CallFunction("first", {"n": 1}), CallFunction("second", {"n": 2}))),
        CallFunction("third"),  # the model may not call it: passed over
        Reply("No more tools."),
    )
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        await connection.update_session(CONFIG)
        connection.create_response()
        done = await recorder.wait_for(ResponseDone)
        calls = recorder.of(FunctionCall)
        connection.create_response(ResponseRequest(tools_allowed=False))
        answer = await recorder.wait_for(AssistantTranscriptDone)
        call = await simulator.wait_for_call()
        create = await call.wait_for_client_event("response.create", index=1)
    assert [(c.name, c.response_id) for c in calls] == [
        ("first", done.response_id),
        ("second", done.response_id),
    ]
    assert calls[0].call_id != calls[1].call_id
    assert answer.transcript == "No more tools."
    assert create["response"] == {"tool_choice": "none"}
    assert not recorder.of(FunctionCall)[2:]


async def test_response_create_waits_for_the_active_response(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """A second response.create is held until response.done instead of racing the first."""
    simulator.script(Reply("First."), Reply("Second."))
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        await connection.update_session(CONFIG)
        call = await simulator.wait_for_call()
        connection.create_response()
        connection.create_response()
        assert connection.busy
        second = await recorder.wait_for(ResponseDone, index=1)
    assert second.status == "completed"
    assert [e.transcript for e in recorder.of(AssistantTranscriptDone)] == ["First.", "Second."]
    assert not [e for e in recorder.of(ErrorEvent) if e.code], "no active-response error"
    first_done = recorder.of(ResponseDone)[0]
    creates = [at for at, event in call.client_events if event["type"] == "response.create"]
    done_at = next(at for at, sent in call.server_events if sent["event_id"] == first_done.event_id)
    assert creates[1] >= done_at


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (401, "invalid_api_key", AuthenticationError),
        (429, "insufficient_quota", QuotaError),
        (429, "rate_limit_exceeded", RateLimitError),
        (400, "invalid_offer", ProtocolError),
        (500, "server_error", ConnectError),
    ],
)
async def test_http_errors(
    simulator: Simulator,
    http: aiohttp.ClientSession,
    status: int,
    code: str,
    error: type[Exception],
) -> None:
    """Each error answer of /v1/realtime/calls raises its own type with the server's message."""
    simulator.faults.http_status = (status, code)
    with pytest.raises(error) as raised:
        async with connected(simulator, http, Recorder()):
            pass
    assert raised.value.status == status
    assert raised.value.code == code
    assert simulator.api_key not in str(raised.value)


async def test_a_wrong_key_is_refused(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """A key the server does not know: 401 at the call and at the key check; never echoed."""
    bad_key = "sk-this-key-is-wrong"
    with pytest.raises(AuthenticationError) as raised:
        await check_api_key(http, simulator.base_url, bad_key)
    assert bad_key not in str(raised.value)
    await check_api_key(http, simulator.base_url, simulator.api_key)


async def test_a_hanging_server_times_out(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """No answer to the offer: ConnectError after the HTTP timeout, nothing left behind."""
    simulator.faults.hang_calls = True
    with pytest.raises(ConnectError, match="did not answer"):
        async with connected(simulator, http, Recorder(), timeouts=Timeouts(http=0.5)):
            pass


async def test_a_key_check_without_an_answer_times_out(
    http: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """An endpoint that accepts and then says nothing: ConnectError after the check's time."""
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen()
        url = f"http://127.0.0.1:{stalled.getsockname()[1]}"
        with pytest.raises(ConnectError, match=r"did not answer within 0\.3 s"):
            await check_api_key(http, url, "sk-any", seconds=0.3)


async def test_connection_refused(http: aiohttp.ClientSession, socket_enabled: None) -> None:
    """Nothing listens at the base URL: ConnectError, quickly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectError, match="cannot reach"):
        async with connected(f"http://127.0.0.1:{port}", http, Recorder()):
            pass


async def test_ice_that_never_connects_times_out(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """An answer whose candidates are dead: ConnectError after the connect timeout."""
    simulator.faults.unreachable_answer = True
    started = time.monotonic()
    with pytest.raises(ConnectError, match="peer to connect"):
        async with connected(simulator, http, Recorder(), timeouts=Timeouts(connect=1.0)):
            pass
    # The 1 s bound, not the 10 s default: 4 s of room for the offer and a loaded machine.
    assert time.monotonic() - started < 5


async def test_a_silent_channel_fails_the_session_update(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """The channel opens but the server never answers: the update times out, bounded."""
    simulator.faults.silent_data_channel = True
    async with connected(simulator, http, Recorder(), timeouts=Timeouts(channel=0.5)) as (
        connection,
        _,
    ):
        with pytest.raises(ConnectError, match="not acknowledged"):
            await connection.update_session(CONFIG)


async def test_peer_loss_mid_response(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """The far side vanishes while the assistant speaks: the owner is told, once."""
    simulator.faults.drop_during_response = True
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, microphone):
        await connection.update_session(CONFIG)
        microphone.play(tone(440, 0.6))
        await recorder.wait_for(OutputAudioStarted)
        reason, _ = await recorder.wait_closed()
        assert connection.is_closed
        with pytest.raises(NotConnectedError):
            connection.clear_output_audio()
    assert reason in (CloseReason.REMOTE_HANGUP, CloseReason.NETWORK_LOST)
    assert len(recorder.closed) == 1


async def test_session_expired(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """OpenAI's session cap: the error arrives, then the connection ends as expired."""
    simulator.faults.max_session_seconds = 0.5
    recorder = Recorder()
    async with connected(simulator, http, recorder):
        error = await recorder.wait_for(ErrorEvent)
        reason, detail = await recorder.wait_closed()
    assert error.code == "session_expired"
    assert reason is CloseReason.SESSION_EXPIRED
    assert "maximum duration" in detail


async def test_malformed_and_unknown_events_are_tolerated(
    simulator: Simulator, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad JSON is logged and dropped; unknown types pass as OtherEvent; the session goes on."""
    simulator.faults.junk_events = True
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        other = await recorder.wait_for(OtherEvent)
        effective = await connection.update_session(CONFIG)
    assert other.type not in ("", "session.created")
    assert effective["type"] == "realtime"
    assert "malformed Realtime event" in caplog.text


async def test_the_server_hangs_up(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """A hang-up from the far side reaches the owner as such."""
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        call = await simulator.wait_for_call()
        await recorder.wait_for(SessionCreated)
        await call.close()
        reason, _ = await recorder.wait_closed()
        assert connection.is_closed
    assert reason in (CloseReason.REMOTE_HANGUP, CloseReason.NETWORK_LOST)


async def test_close_is_idempotent_and_bounded(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """close() twice, concurrently: one hang-up, one report, quickly."""
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        call = await simulator.wait_for_call()
        started = time.monotonic()
        await asyncio.gather(connection.close(), connection.close())
        # Neither waited out a bound (hang-up 2 s, peer close 5 s); a close takes tens of ms.
        assert time.monotonic() - started < 2
    await call.wait_closed()
    assert recorder.closed == [(CloseReason.CLIENT, "")]


async def test_dead_peer_is_detected(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    """Nothing from the peer (no RTP, RTCP or events) for the bound is a lost network."""
    recorder = Recorder()
    timeouts = Timeouts(dead_peer=1.0)
    async with connected(simulator, http, recorder, timeouts=timeouts) as (connection, _):
        call = await simulator.wait_for_call()
        await recorder.wait_for(SessionCreated)
        call.freeze()
        reason, detail = await recorder.wait_closed(timeout=6)
        assert connection.is_closed
    assert reason is CloseReason.NETWORK_LOST
    assert "nothing from the peer" in detail


async def test_a_silent_peer_is_not_a_lost_one(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """A peer that sends no RTP between replies (as pion-based ones do) stays connected.

    Its RTCP reports about our microphone show it is there; a reply afterwards still plays.
    """
    simulator.faults.silent_between_replies = True
    simulator.script(Reply("Still here."))
    recorder = Recorder()
    timeouts = Timeouts(dead_peer=2.0)
    async with connected(simulator, http, recorder, timeouts=timeouts) as (connection, mic):
        await connection.update_session(CONFIG)
        before = await _packets_received(connection)
        await asyncio.sleep(6)  # three times the dead-peer bound, without one RTP packet
        assert await _packets_received(connection) == before, "the peer sent no audio"
        assert not connection.is_closed
        mic.play(tone(440, 0.6))
        said = await recorder.wait_for(AssistantTranscriptDone)
        await recorder.wait_for(OutputAudioStopped)
        assert await _packets_received(connection) > before, "the reply's audio arrived"
    assert said.transcript == "Still here."
    assert recorder.closed == [(CloseReason.CLIENT, "")], "closed by us only, at the end"


async def _packets_received(connection: RealtimeConnection) -> int:
    """Return the RTP packets the connection received so far."""
    stats = await connection._pc.getReceivers()[0].getStats()
    return sum(getattr(s, "packetsReceived", 0) for s in stats.values() if s.type == "inbound-rtp")


async def test_an_ephemeral_key_posts_raw_sdp(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """An ek_ key (minted by /client_secrets) sends the bare offer; the session comes from it."""
    async with http.post(
        f"{simulator.base_url}/v1/realtime/client_secrets",
        json={"session": {"type": "realtime", "model": "gpt-realtime", "instructions": "Minted."}},
        headers={"Authorization": f"Bearer {simulator.api_key}"},
    ) as response:
        secret = (await response.json())["value"]
    assert secret.startswith("ek_")
    recorder = Recorder()
    async with connected(simulator, http, recorder, api_key=secret):
        created = await recorder.wait_for(SessionCreated)
    assert created.session["instructions"] == "Minted."


async def test_a_session_update_the_server_refuses(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """update_session raises ProtocolError with the server's message when it is refused."""
    simulator.allow_invalid_client_events = True
    async with connected(simulator, http, Recorder()) as (connection, _):
        with pytest.raises(ProtocolError) as raised:
            await connection.update_session(SessionConfig(tool_choice="whatever-i-like"))
    assert raised.value.message


async def test_odd_messages_and_a_failing_owner_do_not_stop_the_session(
    simulator: Simulator,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    error_log: ErrorLog,
) -> None:
    """A JSON value that is not an object is dropped; an owner that raises is logged."""
    error_log.expect("Error handling Realtime event session.created")
    recorder = Recorder()
    failures = 0

    def flaky(event: ServerEvent) -> None:
        nonlocal failures
        if isinstance(event, SessionCreated):
            failures += 1
            raise RuntimeError("the owner broke")  # noqa: TRY004 - a bug in the owner, not a type error
        recorder.on_event(event)

    async with connected(simulator, http, recorder, on_event=flaky) as (connection, _):
        call = await simulator.wait_for_call()
        await call.send_raw("[1, 2, 3]")
        effective = await connection.update_session(CONFIG)
    assert effective["type"] == "realtime"
    assert failures == 1
    assert "not an object" in caplog.text
    assert "Error handling Realtime event session.created" in caplog.text


@asynccontextmanager
async def _fake_endpoint(body: str) -> AsyncIterator[str]:
    """Serve one fixed 201 answer at /v1/realtime/calls; yield the base URL."""
    from aiohttp import web  # noqa: PLC0415 - only this test serves HTTP itself

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(status=201, text=body, headers={"Location": "/v1/realtime/calls/rtc_x"})

    app = web.Application()
    app.router.add_post("/v1/realtime/calls", answer)
    async with serve_on_loopback(app) as url:
        yield url


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"ok": true}', "not SDP"),
        ("v=0\r\nthis is not an answer\r\n", "SDP answer is invalid"),
    ],
)
async def test_an_answer_that_is_not_usable_sdp(
    http: aiohttp.ClientSession, socket_enabled: None, body: str, message: str
) -> None:
    """A 201 whose body is not an SDP answer is a ProtocolError, never fed to aiortc blindly."""
    async with _fake_endpoint(body) as base_url:
        with pytest.raises(ProtocolError, match=message):
            async with connected(base_url, http, Recorder()):
                pass


async def test_hang_up_fails_quietly_when_the_server_is_gone(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """close() still releases the peer when the hang-up cannot reach the server."""
    recorder = Recorder()
    async with connected(simulator, http, recorder) as (connection, _):
        await recorder.wait_for(SessionCreated)
        await simulator.stop()
        started = time.monotonic()
        await connection.close()
        # A refused hang-up fails at once; 4 s stays under the peer close bound (5 s).
        assert time.monotonic() - started < 4
    assert connection.is_closed


async def test_a_refused_response_create_waits_for_its_turn(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    """A request refused because the server started a response first runs later, whole.

    An announcement that raced a response of the server's own keeps its words.
    """
    simulator.script(Reply("First."), Reply("Second."))
    recorder = Recorder()
    announcement = "Say this to the user, in your own voice: the laundry is done"
    async with connected(simulator, http, recorder) as (connection, _):
        await connection.update_session(CONFIG)
        # A response the connection did not ask for, as the server's VAD starts one.
        connection._send({"type": "response.create"})
        connection.create_response(ResponseRequest(announcement))  # raced: refused
        second = await recorder.wait_for(ResponseDone, index=1)
        call = await simulator.wait_for_call()
    assert second.status == "completed"
    creates = [e for _, e in call.client_events if e["type"] == "response.create"]
    assert [c.get("response", {}).get("instructions") for c in creates] == [
        None,
        announcement,
        announcement,
    ]
    refused = [e for _, e in call.server_events if e["type"] == "error"]
    assert refused[0]["error"]["code"] == "conversation_already_has_active_response"
    assert not recorder.of(ErrorEvent), "the owner never sees the race"
    assert [e.transcript for e in recorder.of(AssistantTranscriptDone)] == ["First.", "Second."]
