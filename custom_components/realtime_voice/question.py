"""Waiting for the user's reply to a question: the next utterance the Realtime model transcribes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .session import VoiceSession
from .state import SessionState


@asynccontextmanager
async def async_next_user_reply(session: VoiceSession) -> AsyncIterator[asyncio.Future[str | None]]:
    """Yield a future of the next user transcript; None if the conversation ends without one.

    Enter it before the conversation starts, so that a quick reply is not missed.
    """
    reply: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    before = session.state.user_transcript
    started = False

    def on_state(state: SessionState) -> None:
        nonlocal started
        if reply.done():
            return
        if state.user_transcript is not before and state.user_transcript is not None:
            reply.set_result(state.user_transcript.text)
        elif state.active:
            started = True
        elif started:
            reply.set_result(None)  # ended (idle timeout, error, hang-up) without a reply

    unsubscribe = session.async_subscribe(on_state)
    try:
        yield reply
    finally:
        unsubscribe()
        reply.cancel()
