"""The response tracker alone: what is sent, queued, refused and quiet, event by event."""

from __future__ import annotations

import asyncio

from custom_components.realtime_voice.realtime.responses import ResponseRequest, ResponseTracker

GREETING = ResponseRequest("Say hello")
GOODBYE = ResponseRequest("Say goodbye", max_output_tokens=200)


def test_a_request_goes_out_when_nothing_runs_and_waits_otherwise() -> None:
    tracker = ResponseTracker()
    assert not tracker.busy
    assert tracker.request(GREETING) is GREETING
    assert tracker.request(GOODBYE) is None  # one response at a time
    assert tracker.busy
    tracker.created("resp_1")
    assert tracker.done("resp_1") is GOODBYE
    tracker.created("resp_2")
    assert tracker.done("resp_2") is None
    assert not tracker.busy


def test_a_request_refused_for_the_servers_own_response_waits_whole() -> None:
    """The server's VAD started a response as ours went out: ours runs after it, unchanged."""
    tracker = ResponseTracker()
    assert tracker.request(GREETING) is GREETING
    tracker.created("resp_vad")
    assert tracker.refused(server_busy=True) is None
    assert tracker.busy
    assert tracker.done("resp_vad") is GREETING  # instructions kept


def test_a_request_refused_before_its_id_is_known_still_waits() -> None:
    """The refusal can come before the server's response.created: it is waited for."""
    tracker = ResponseTracker()
    tracker.request(GREETING)
    assert tracker.refused(server_busy=True) is None
    tracker.created("resp_vad")
    assert tracker.done("resp_vad") is GREETING


def test_a_request_refused_for_another_reason_lets_the_next_go() -> None:
    tracker = ResponseTracker()
    tracker.request(GREETING)
    tracker.request(GOODBYE)
    assert tracker.refused(server_busy=False) is GOODBYE


def test_cancel_drops_the_queue_and_says_whether_something_runs() -> None:
    tracker = ResponseTracker()
    assert not tracker.cancel()
    tracker.request(GREETING)
    tracker.request(GOODBYE)
    assert tracker.cancel()
    tracker.created("resp_1")
    assert tracker.done("resp_1") is None  # the goodbye was dropped with the queue


def test_audio_keeps_it_busy_after_the_response_is_done() -> None:
    """OpenAI's response.done comes long before its audio has played out."""
    tracker = ResponseTracker()
    tracker.request(GREETING)
    tracker.created("resp_1")
    tracker.audio_started("resp_1")
    tracker.done("resp_1")
    assert tracker.busy
    assert tracker.spoke("resp_1")
    assert not tracker.spoke("resp_2")
    tracker.audio_ended()
    assert not tracker.busy


async def test_wait_quiet_returns_when_quiet_or_bounded() -> None:
    tracker = ResponseTracker()
    assert await tracker.wait_quiet(0.01)
    tracker.request(GREETING)
    assert not await tracker.wait_quiet(0.01)
    waiting = asyncio.ensure_future(tracker.wait_quiet(5))
    await asyncio.sleep(0)
    tracker.reset()  # the connection closed: nobody waits for a dead call
    assert await waiting
