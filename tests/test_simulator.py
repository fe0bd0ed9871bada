"""The Realtime simulator, driven by a plain aiortc client over real WebRTC on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import re
from typing import Any

import aiohttp
from aiortc import RTCSessionDescription
from aiortc.exceptions import OperationError
import pytest

from tests.helpers.plain_client import PlainClient

from .simulator import CallFunction, InvalidServerEventError, Reply, SimulatedCall, Simulator
from .simulator.usage_model import ConversationContext, transcription_usage
from .simulator.voice import tone

pytestmark = pytest.mark.usefixtures("loopback_ice")

# Short silences keep turns quick; transcription on so that user turns are transcribed.
SESSION: dict[str, Any] = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "You are a test.",
    "audio": {
        "input": {
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"voice": "marin"},
    },
}
SPEECH = tone(440.0, 0.3)
SILENT_RMS = 50.0
LOUD_RMS = 300.0


@pytest.fixture
async def client(
    simulator: Simulator,
) -> AsyncIterator[PlainClient]:
    """Return a plain client (not connected yet), closed after the test."""
    async with PlainClient() as plain:
        yield plain


async def _connect(
    simulator: Simulator, client: PlainClient, session: dict[str, Any] | None = None
) -> SimulatedCall:
    """Connect with a multipart offer and return the simulator's side of the call."""
    await client.connect(simulator.base_url, simulator.api_key, session=session or SESSION)
    await client.wait_for_event("session.created")
    return await simulator.wait_for_call()


# --- Session ------------------------------------------------------------------------------


async def test_session_created_first_then_partial_update(
    simulator: Simulator, client: PlainClient
) -> None:
    call = await _connect(simulator, client)
    created = client.events[0][1]
    assert created["type"] == "session.created"
    assert created["event_id"].startswith("event_")
    assert created["session"]["instructions"] == "You are a test."
    assert created["session"]["audio"]["output"]["voice"] == "marin"

    client.send({"type": "session.update", "session": {"type": "realtime", "tracing": "auto"}})
    updated = await client.wait_for_event("session.updated")
    assert updated["session"]["tracing"] == "auto"
    assert updated["session"]["instructions"] == "You are a test."
    assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
    assert (await call.wait_for_client_event("session.update"))["session"]["tracing"] == "auto"
    assert call.client_events[0][0] > call.created_at


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"type": "realtime", "voice": "alloy"}, "unknown_parameter", "session.voice"),
        ({"modalities": ["text", "audio"]}, "missing_required_parameter", "session.type"),
        (
            {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "x"}}}},
            "invalid_value",
            None,
        ),
    ],
)
async def test_invalid_session_update_is_refused(
    simulator: Simulator, client: PlainClient, session: dict[str, Any], code: str, param: str | None
) -> None:
    simulator.allow_invalid_client_events = True
    call = await _connect(simulator, client)
    client.send({"type": "session.update", "event_id": "evt_mine", "session": session})
    error = (await client.wait_for_event("error"))["error"]
    assert error["code"] == code
    assert error["event_id"] == "evt_mine"
    if param is not None:
        assert error["param"] == param
    assert "session.updated" not in client.types()
    assert len(call.invalid_client_events) == 1


async def test_unknown_and_malformed_client_events_are_recorded(
    simulator: Simulator, client: PlainClient
) -> None:
    simulator.allow_invalid_client_events = True
    call = await _connect(simulator, client)
    client.send({"type": "response.audio_transcript.delta", "event_id": "e1"})
    client.channel.send("{not json")
    await client.wait_for_event("error", index=1)
    errors = [event["error"] for _, event in client.events if event["type"] == "error"]
    assert [error["code"] for error in errors] == ["invalid_value", "invalid_json"]
    assert errors[0]["param"] == "type"
    assert errors[0]["event_id"] == "e1"
    assert [bad.problem.code for bad in call.invalid_client_events] == [
        "invalid_value",
        "invalid_json",
    ]


async def test_invalid_server_event_is_a_simulator_bug(
    simulator: Simulator, client: PlainClient
) -> None:
    call = await _connect(simulator, client)
    with pytest.raises(InvalidServerEventError):
        await call.send({"type": "response.audio_transcript.delta", "delta": "beta"})
    await call.send({"type": "input_audio_buffer.cleared"})
    assert (await client.wait_for_event("input_audio_buffer.cleared"))["event_id"]


# --- Voice turns --------------------------------------------------------------------------


async def test_voice_turn(simulator: Simulator, client: PlainClient) -> None:
    simulator.script(Reply("Hello there"))
    call = await _connect(simulator, client)
    client.play(SPEECH)
    spoken_at, _ = await call.wait_for_speech()

    stopped = await client.wait_for_event("output_audio_buffer.stopped", timeout=8)
    types = client.types()
    turn = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "output_audio_buffer.started",
        "response.output_audio_transcript.delta",
    ]
    assert types[1 : 1 + len(turn)] == turn
    tail = types[types.index("response.output_audio.done") :]
    assert tail == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
        "output_audio_buffer.stopped",
    ]
    transcription = await client.wait_for_event(
        "conversation.item.input_audio_transcription.completed"
    )
    committed = await client.wait_for_event("input_audio_buffer.committed")
    assert transcription["item_id"] == committed["item_id"]
    assert transcription["transcript"] == simulator.user_transcript
    done = (await client.wait_for_event("response.done"))["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0] == {"type": "output_audio", "transcript": "Hello there"}
    assert done["usage"]["output_token_details"]["audio_tokens"] > 0
    delta = await client.wait_for_event("response.output_audio_transcript.delta")
    assert "obfuscation" in delta

    started_at = client.event_time(await client.wait_for_event("output_audio_buffer.started"))
    stopped_at = client.event_time(stopped)
    assert client.event_time(await client.wait_for_event("response.done")) < stopped_at
    assert max(client.energy_between(started_at, stopped_at)) > LOUD_RMS
    assert spoken_at < started_at
    # The reply audio lasts about as long as the speech: about a second between the brackets.
    assert 0.5 < stopped_at - started_at < 3


async def test_default_reply_without_script(simulator: Simulator, client: PlainClient) -> None:
    await _connect(simulator, client)
    client.play(SPEECH)
    done = (await client.wait_for_event("response.done", timeout=8))["response"]
    assert done["output"][0]["content"][0]["transcript"] == "Sure, I can help with that."
    await client.wait_for_event("output_audio_buffer.stopped", timeout=8)


async def test_barge_in_cancels_and_cuts_audio(simulator: Simulator, client: PlainClient) -> None:
    simulator.script(Reply("This is a long answer that the user will interrupt very soon."))
    await _connect(simulator, client)
    client.play(SPEECH)
    started = await client.wait_for_event("output_audio_buffer.started", timeout=5)
    # Let some reply audio arrive, then talk over it.
    started_at = client.event_time(started)
    await client.wait_until(
        lambda: max(client.energy_between(started_at, float("inf")), default=0) > LOUD_RMS or None
    )
    client.play(SPEECH)
    cleared = await client.wait_for_event("output_audio_buffer.cleared")
    done = (await client.wait_for_event("response.done"))["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "turn_detected"
    assert done["output"][0]["status"] == "incomplete"
    assert cleared["response_id"] == done["id"]
    types = client.types()
    assert types.index("input_audio_buffer.speech_started", types.index("response.created")) < (
        types.index("response.done")
    )
    # After the cut, the model's audio goes silent and stays so (audio already on its way still
    # arrives, later on a loaded machine): 200 ms of silence, then none of the rest of the reply
    # for half a second, or until the answer to the user's interruption starts.
    cleared_at = client.event_time(cleared)
    silent_at = await _silent_for(client, 10, after=cleared_at)
    await asyncio.sleep(0.5)
    answer_at = _next_start(client, after=cleared_at)
    assert max(client.energy_between(silent_at, answer_at), default=0.0) < SILENT_RMS
    assert "output_audio_buffer.stopped" not in client.types()


async def _silent_for(client: PlainClient, frames: int, *, after: float) -> float:
    """Wait until the last `frames` frames received since `after` are all silent; return when."""

    def silent() -> float | None:
        since = [(at, value) for at, value in client.audio_frames if at > after][-frames:]
        if len(since) == frames and max(value for _, value in since) < SILENT_RMS:
            return since[-1][0]
        return None

    return await client.wait_until(silent)


def _next_start(client: PlainClient, *, after: float) -> float:
    """Return when the next reply's audio started after `after` (infinity: none yet)."""
    return min(
        (
            at
            for at, event in client.events
            if at > after and event["type"] == "output_audio_buffer.started"
        ),
        default=float("inf"),
    )


# --- Client-driven responses --------------------------------------------------------------


async def test_function_call_turn(simulator: Simulator, client: PlainClient) -> None:
    simulator.script(CallFunction("HassTurnOn", {"name": "kitchen light"}), Reply("Done"))
    call = await _connect(simulator, client)
    client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Turn on the kitchen light"}],
            },
        }
    )
    user_item = (await client.wait_for_event("conversation.item.done"))["item"]
    assert user_item["content"][0]["text"] == "Turn on the kitchen light"
    client.send({"type": "response.create"})
    done = await client.wait_for_event("response.function_call_arguments.done")
    assert done["name"] == "HassTurnOn"
    assert done["arguments"] == '{"name": "kitchen light"}'
    deltas = [e["delta"] for _, e in client.events if e["type"].endswith("arguments.delta")]
    assert len(deltas) > 1
    assert "".join(deltas) == done["arguments"]
    response = (await client.wait_for_event("response.done"))["response"]
    assert response["output"][0]["type"] == "function_call"
    assert response["output"][0]["call_id"] == done["call_id"]
    assert not [t for t in client.types() if t.startswith("output_audio_buffer")]

    client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": done["call_id"],
                "output": '{"success": true}',
            },
        }
    )
    output = (await client.wait_for_event("conversation.item.done", index=2))["item"]
    assert output["type"] == "function_call_output"
    client.send({"type": "response.create"})
    second = (await client.wait_for_event("response.done", index=1))["response"]
    assert second["output"][0]["content"][0]["transcript"] == "Done"
    await client.wait_for_event("output_audio_buffer.stopped", timeout=5)
    assert [e["type"] for _, e in call.client_events] == [
        "conversation.item.create",
        "response.create",
        "conversation.item.create",
        "response.create",
    ]


async def test_response_errors_cancel_and_clear(simulator: Simulator, client: PlainClient) -> None:
    simulator.script(Reply("A long enough answer to cancel while it is still being generated."))
    await _connect(simulator, client)
    client.send({"type": "response.cancel", "event_id": "c1"})
    error = (await client.wait_for_event("error"))["error"]
    assert (error["code"], error["event_id"]) == ("response_cancel_not_active", "c1")

    client.send({"type": "response.create"})
    await client.wait_for_event("output_audio_buffer.started")
    client.send({"type": "response.create", "event_id": "c2"})
    error = (await client.wait_for_event("error", index=1))["error"]
    assert (error["code"], error["event_id"]) == ("conversation_already_has_active_response", "c2")

    client.send({"type": "response.cancel"})
    done = (await client.wait_for_event("response.done"))["response"]
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    client.send({"type": "output_audio_buffer.clear"})
    cleared = await client.wait_for_event("output_audio_buffer.cleared")
    assert cleared["response_id"] == done["id"]
    cleared_at = client.event_time(cleared)
    quiet = await client.wait_until(
        lambda: [at for at, _ in client.audio_frames if at > cleared_at + 0.3] or None
    )
    assert max(client.energy_between(quiet[0], float("inf"))) < SILENT_RMS


# --- HTTP ---------------------------------------------------------------------------------


async def _post(
    simulator: Simulator,
    path: str,
    *,
    key: str | None = None,
    method: str = "POST",
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    """Send one request; return status, JSON (or text) body and headers."""
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, simulator.base_url + path, headers=headers, **kwargs) as response,
    ):
        body = await (
            response.json() if response.content_type == "application/json" else response.text()
        )
        return response.status, body, response.headers


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ((429, "insufficient_quota"), 429, "insufficient_quota"),
        ((429, "rate_limit_exceeded"), 429, "rate_limit_exceeded"),
        ((500, "server_error"), 500, "server_error"),
    ],
)
async def test_http_fault_status(
    simulator: Simulator, client: PlainClient, fault: tuple[int, str], status: int, code: str
) -> None:
    simulator.faults.http_status = fault
    answer = await client.post_offer(simulator.base_url, simulator.api_key, session=SESSION)
    assert answer.status == status
    assert answer.json()["error"]["code"] == code
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert not simulator.calls


async def test_http_errors(simulator: Simulator, client: PlainClient) -> None:
    offer = await client.offer()
    cases: list[tuple[int, str, dict[str, Any]]] = [
        (401, "invalid_api_key", {"key": "sk-wrong", "data": offer}),
        (401, "missing_api_key", {"data": offer}),
        (400, "invalid_offer", {"key": simulator.api_key, "data": "hello"}),
        (400, "unsupported_content_type", {"key": simulator.api_key, "json": {"sdp": offer}}),
    ]
    for status, code, kwargs in cases:
        headers = {} if "json" in kwargs else {"Content-Type": "application/sdp"}
        got, body, response_headers = await _post(
            simulator, "/v1/realtime/calls", headers=headers, **kwargs
        )
        assert (got, body["error"]["code"]) == (status, code), body
        assert response_headers["Access-Control-Allow-Origin"] == "*"

    bad_session = {**SESSION, "modalities": ["audio"]}
    answer = await client.post_offer(
        simulator.base_url, simulator.api_key, session=bad_session, sdp=offer
    )
    assert answer.status == 400
    assert answer.json()["error"]["param"] == "session.modalities"

    status, body, _ = await _post(
        simulator, "/v1/realtime?model=gpt-realtime", key=simulator.api_key, data=offer
    )
    assert (status, body["error"]["code"]) == (400, "beta_api_shape_disabled")
    assert not simulator.calls


async def test_models_validate_the_key(simulator: Simulator) -> None:
    status, body, _ = await _post(simulator, "/v1/models", method="GET", key=simulator.api_key)
    assert status == 200
    assert "gpt-realtime" in [model["id"] for model in body["data"]]
    status, body, _ = await _post(simulator, "/v1/models", method="GET", key="sk-nope")
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")


async def test_cors_preflight_and_browser_style_offer(
    simulator: Simulator, client: PlainClient
) -> None:
    status, _, headers = await _post(
        simulator,
        "/v1/realtime/calls",
        method="OPTIONS",
        headers={
            "Origin": "http://localhost:8123",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-openai-agents-sdk",
        },
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-openai-agents-sdk"} <= allowed

    # Raw SDP with a standard key and no ?model=, as a development browser client sends.
    answer = await client.post_offer(simulator.base_url, simulator.api_key)
    assert answer.status == 201
    assert answer.headers["Content-Type"] == "application/sdp"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in answer.headers["Access-Control-Expose-Headers"]
    call_id = answer.headers["Location"].rsplit("/", 1)[-1]
    assert call_id.startswith("rtc_u1_")
    assert len(call_id) == len("rtc_u1_") + 32
    assert "a=msid:" in answer.text
    assert "a=setup:active" in answer.text
    assert "typ host" in answer.text


async def test_client_secret_then_raw_offer(simulator: Simulator, client: PlainClient) -> None:
    status, body, _ = await _post(
        simulator,
        "/v1/realtime/client_secrets",
        key=simulator.api_key,
        json={"expires_after": {"anchor": "created_at", "seconds": 5}, "session": SESSION},
    )
    assert (status, body["error"]["param"]) == (400, "expires_after.seconds")
    status, secret, _ = await _post(
        simulator, "/v1/realtime/client_secrets", key=simulator.api_key, json={"session": SESSION}
    )
    assert status == 200
    assert secret["value"].startswith("ek_")
    assert secret["session"]["object"] == "realtime.session"

    await client.connect(simulator.base_url + "", secret["value"])
    created = await client.wait_for_event("session.created")
    assert created["session"]["instructions"] == "You are a test."


async def test_hangup_closes_the_peer(simulator: Simulator, client: PlainClient) -> None:
    call = await _connect(simulator, client)
    status, _, headers = await _post(
        simulator, f"/v1/realtime/calls/{client.call_id}/hangup", key=simulator.api_key
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    await call.wait_closed()
    assert call.hung_up
    async with asyncio.timeout(5):
        await client.channel_closed.wait()


# --- Faults -------------------------------------------------------------------------------


async def test_dtls_closed_on_hangup(simulator: Simulator, client: PlainClient) -> None:
    """With the fault, DTLS is closed when the hang-up is answered, SCTP not yet; then the rest.

    The SCTP association is still up when DTLS goes, so its ABORT can never reach the client:
    the client learns of the end from close_notify alone, as from a peer built on pion.
    """
    simulator.faults.dtls_closed_on_hangup = True
    call = await _connect(simulator, client)
    client_sctp = client.pc.sctp
    assert client_sctp is not None
    status, _, _ = await _post(
        simulator, f"/v1/realtime/calls/{client.call_id}/hangup", key=simulator.api_key
    )
    assert status == 200
    assert call._pc.sctp.transport.state == "closed"
    assert call._pc.sctp.state == "connected"
    async with asyncio.timeout(5):
        while client_sctp.transport.state != "closed":  # noqa: ASYNC110 - aiortc has no event
            await asyncio.sleep(0.01)
    await call.wait_closed()
    assert call.hung_up


async def test_hanging_calls_endpoint(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.hang_calls = True
    with pytest.raises(TimeoutError):
        await client.post_offer(simulator.base_url, simulator.api_key, timeout=0.3)


async def test_unreachable_answer_never_connects(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.unreachable_answer = True
    await client.connect(simulator.base_url, simulator.api_key, session=SESSION, wait_open=False)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):
            await client.opened.wait()
    assert client.pc.connectionState != "connected"


async def test_silent_data_channel(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.silent_data_channel = True
    await client.connect(simulator.base_url, simulator.api_key, session=SESSION)
    call = await simulator.wait_for_call()
    client.send({"type": "session.update", "session": {"type": "realtime"}})
    await call.wait_for_client_event("session.update")
    client.play(SPEECH)
    await call.wait_for_speech()
    assert not client.raw_messages


async def test_junk_events_after_session_created(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.junk_events = True
    await _connect(simulator, client)
    await client.wait_until(lambda: len(client.raw_messages) >= 3 or None)
    assert client.raw_messages[1][1].startswith('{"type": "session.updated"')
    assert client.events[1][1]["type"] == "response.telepathy.delta"


@pytest.mark.usefixtures("without_asyncio_debug")
async def test_transcript_delta_flood(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.transcript_delta_flood = 200
    simulator.script(Reply("Flooded"))
    await _connect(simulator, client)
    client.send({"type": "response.create"})
    # 200 messages through two aiortc peers in one loop: well under a second on an idle machine,
    # and the one bound here that a machine giving the test a tenth of a core may need.
    done = await client.wait_for_event("response.output_audio_transcript.done", timeout=30)
    assert done["transcript"] == "Flooded"
    deltas = [t for t in client.types() if t == "response.output_audio_transcript.delta"]
    assert len(deltas) == 200


async def test_session_expired(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.max_session_seconds = 0.3
    call = await _connect(simulator, client)
    error = (await client.wait_for_event("error"))["error"]
    assert error["code"] == "session_expired"
    await call.wait_closed()
    async with asyncio.timeout(5):
        await client.channel_closed.wait()


async def test_peer_lost_during_response(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.drop_during_response = True
    call = await _connect(simulator, client)
    client.send({"type": "response.create"})
    await client.wait_for_event("output_audio_buffer.started")
    await call.wait_closed()
    async with asyncio.timeout(5):
        await client.channel_closed.wait()
    assert "response.done" not in client.types()


async def test_drop_and_raw_injection(simulator: Simulator, client: PlainClient) -> None:
    call = await _connect(simulator, client)
    await call.send_raw("not json at all")
    await client.wait_until(lambda: len(client.raw_messages) >= 2 or None)
    assert client.raw_messages[-1][1] == "not json at all"
    await call.drop()
    async with asyncio.timeout(5):
        await client.channel_closed.wait()


async def test_frozen_peer_goes_silent(simulator: Simulator, client: PlainClient) -> None:
    call = await _connect(simulator, client)
    await client.wait_until(lambda: client.audio_frames or None)
    call.freeze()
    client.send({"type": "response.create"})
    await call.wait_for_client_event("response.create")
    with pytest.raises(TimeoutError):
        await client.wait_for_event("response.created", timeout=0.5)
    # The jitter buffer may still hand out a few frames (late, on a loaded machine); then
    # nothing arrives at all, where a live peer sends 25 frames in half a second.
    received = len(client.audio_frames)
    await asyncio.sleep(0.5)
    assert len(client.audio_frames) == received
    assert client.pc.connectionState == "connected"


@pytest.mark.parametrize(
    ("bad_answer", "shows"),
    [("garbled", r"m=audio\Z"), ("no_common_codec", r"m=audio \d+ \S+ 96\r\n.*speex/48000")],
)
async def test_bad_answer(
    simulator: Simulator, client: PlainClient, bad_answer: str, shows: str
) -> None:
    simulator.faults.bad_answer = bad_answer  # type: ignore[assignment]
    answer = await client.post_offer(simulator.base_url, simulator.api_key, session=SESSION)
    assert answer.status == 201
    assert answer.text.startswith("v=0")
    assert re.search(shows, answer.text, re.DOTALL)
    assert "opus" not in answer.text
    # aiortc refuses both, each in its own way (a failed assert while parsing, or no codec).
    with pytest.raises((AssertionError, OperationError)):
        await client.pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))


async def test_unopened_data_channel(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.unopened_data_channel = True
    await client.connect(simulator.base_url, simulator.api_key, session=SESSION, wait_open=False)
    connected = asyncio.Event()

    @client.pc.on("connectionstatechange")
    def on_state() -> None:
        if client.pc.connectionState == "connected":
            connected.set()

    async with asyncio.timeout(5):
        await connected.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):
            await client.opened.wait()
    assert client.channel.readyState == "connecting"


async def test_refused_client_events(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.refused_client_events = frozenset({"response.create"})
    call = await _connect(simulator, client)
    client.send({"type": "response.create", "event_id": "evt_refused"})
    error = (await client.wait_for_event("error"))["error"]
    assert (error["type"], error["code"], error["event_id"]) == (
        "server_error",
        "server_error",
        "evt_refused",
    )
    assert "response.created" not in client.types()
    client.send({"type": "session.update", "session": {"type": "realtime"}})
    await client.wait_for_event("session.updated")
    assert not call.invalid_client_events


async def test_duplicate_events(simulator: Simulator, client: PlainClient) -> None:
    simulator.faults.duplicate_events = True
    call = await _connect(simulator, client)
    client.send({"type": "response.create"})
    await client.wait_for_event("response.done", index=1)
    sent = [event["event_id"] for _, event in call.server_events]
    received = [event["event_id"] for _, event in client.events]
    # One channel, reliable and ordered: each event twice in a row, in the order sent.
    assert received == [event_id for event_id in sent for _ in range(2)][: len(received)]
    assert [e for _, e in call.server_events].count(
        await client.wait_for_event("response.done")
    ) == 1


# --- Models, usage and truncation ---------------------------------------------------------


async def test_models_list_shutdown_dates(simulator: Simulator) -> None:
    """`GET /v1/models` lists the account's models with OpenAI's `shutdown_date` where set."""
    _, body, _ = await _post(simulator, "/v1/models", method="GET", key=simulator.api_key)
    listed = {model["id"]: model.get("shutdown_date") for model in body["data"]}
    assert listed["gpt-realtime"] == listed["gpt-realtime-mini"] == "2027-01-19"
    assert listed["gpt-realtime-2.1"] is None
    assert "shutdown_date" not in next(m for m in body["data"] if m["id"] == "gpt-realtime-2.1")
    simulator.models["gpt-realtime-2.1"] = "2028-01-01"
    _, body, _ = await _post(simulator, "/v1/models", method="GET", key=simulator.api_key)
    assert next(m for m in body["data"] if m["id"] == "gpt-realtime-2.1")["shutdown_date"] == (
        "2028-01-01"
    )


async def test_models_the_account_cannot_use(simulator: Simulator, client: PlainClient) -> None:
    """A listed model that is not a Realtime one is refused at once.

    An unlisted one connects, and every response fails with `model_not_found`, as OpenAI's do.
    """
    answer = await client.post_offer(
        simulator.base_url, simulator.api_key, session={**SESSION, "model": "gpt-4o"}
    )
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "invalid_model"

    call = await _connect(simulator, client, {**SESSION, "model": "gpt-realtime-9"})
    assert not call.model_available
    client.send({"type": "response.create"})
    done = (await client.wait_for_event("response.done", timeout=15))["response"]
    assert done["status"] == "failed"
    assert done["status_details"]["error"]["code"] == "model_not_found"
    assert done["usage"]["total_tokens"] == 0


async def test_reasoning_only_for_models_that_reason(
    simulator: Simulator, client: PlainClient
) -> None:
    """`reasoning` is refused for models before gpt-realtime-2, in the offer and in updates."""
    reasoning = {"reasoning": {"effort": "low"}}
    answer = await client.post_offer(
        simulator.base_url, simulator.api_key, session={**SESSION, **reasoning}
    )
    assert answer.status == 400
    assert answer.json()["error"]["param"] == "session.reasoning"
    call = await _connect(simulator, client, {**SESSION, "model": "gpt-realtime-1.5"})
    client.send({"type": "session.update", "session": {"type": "realtime", **reasoning}})
    error = await client.wait_for_event("error", timeout=15)
    assert error["error"]["code"] == "unsupported_parameter"
    assert "reasoning" not in call.session
    simulator.allow_invalid_client_events = True


async def test_usage_grows_with_the_context_and_is_cached(
    simulator: Simulator, client: PlainClient
) -> None:
    """Each answer re-reads the conversation; what the last one read is billed as cached."""
    persona = {**SESSION, "instructions": "You are a test. " * 300}  # about 1,200 tokens
    await _connect(simulator, client, persona)
    usages = []
    for index in range(3):
        client.send({"type": "response.create"})
        done = await client.wait_for_event("response.done", index=index, timeout=15)
        usages.append(done["response"]["usage"])
        await client.wait_for_event("output_audio_buffer.stopped", index=index, timeout=15)
    inputs = [usage["input_tokens"] for usage in usages]
    assert inputs[0] < inputs[1] < inputs[2]
    first_output = usages[0]["output_tokens"]
    assert inputs[1] == inputs[0] + first_output  # the answer joined the conversation
    cached = [usage["input_token_details"]["cached_tokens"] for usage in usages]
    assert cached[0] == 0
    assert cached[1] == inputs[0] - inputs[0] % 128
    assert cached[2] == inputs[1] - inputs[1] % 128
    split = usages[2]["input_token_details"]["cached_tokens_details"]
    assert split["text_tokens"] + split["audio_tokens"] == cached[2]


def test_truncation_bounds_the_context_and_costs_the_cache() -> None:
    """A token limit with a retention ratio keeps the context bounded.

    Each cut re-reads the conversation uncached (only the instructions stay cached).
    """
    session = {
        "model": "gpt-realtime-2.1",
        "instructions": "x" * 8000,  # 2,000 tokens
        "truncation": {
            "type": "retention_ratio",
            "retention_ratio": 0.5,
            "token_limits": {"post_instructions": 1000},
        },
    }
    context = ConversationContext(session)
    auto = ConversationContext({**session, "truncation": "auto"})
    for _turn in range(30):
        for conversation in (context, auto):
            conversation.add_user_audio(5.0)
            last = conversation.answer(output_text=10, output_audio=100)
    assert last["input_tokens"] > 2000 + 30 * 150  # auto: everything, re-read every turn
    bounded = context.answer(output_text=10, output_audio=100)
    assert bounded["input_tokens"] <= 2000 + 1000
    assert context.truncations > 1
    assert auto.truncations == 0


def test_transcription_usage_by_model() -> None:
    """whisper-1 bills the duration; the gpt-4o transcribers tokens, 10 a second of audio."""
    assert transcription_usage("whisper-1", 2.5, "Hi") == {"type": "duration", "seconds": 2.5}
    usage = transcription_usage("gpt-4o-mini-transcribe", 2.0, "Hello, can you help me?")
    assert usage["input_token_details"] == {"text_tokens": 0, "audio_tokens": 20}
    assert usage["total_tokens"] == 20 + 6


async def test_max_output_tokens_cuts_the_reply(simulator: Simulator, client: PlainClient) -> None:
    """A response's own `max_output_tokens` cuts its audio there: status incomplete."""
    simulator.script(Reply("This answer goes on and on for a good many seconds, far too long."))
    await _connect(simulator, client)
    client.send({"type": "response.create", "response": {"max_output_tokens": 40}})
    done = (await client.wait_for_event("response.done", timeout=15))["response"]
    assert done["status"] == "incomplete"
    assert done["status_details"]["reason"] == "max_output_tokens"
    assert done["usage"]["output_tokens"] <= 40
