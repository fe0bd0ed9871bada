"""Which responses are running, queued and audible: one pure tracker, no I/O.

The server runs one response at a time. A `response.create` sent while one runs is refused
(`conversation_already_has_active_response`), and the server's own VAD can start a response at
any moment. So every request goes through here: sent now when nothing runs, queued otherwise,
and put back at the front, whole (its instructions too), when the server refuses it because a
response of its own got there first.

"Quiet" means nothing is requested, running, queued or streaming audio: what a goodbye waits for.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Final

_SPOKEN_REMEMBERED: Final = 64
SERVER_RESPONSE: Final = "<server>"
"""Stands for a response the server refused ours for, before its id is known."""


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    """What one `response.create` asks for; unset fields use the session's configuration."""

    instructions: str | None = None
    tools_allowed: bool = True
    max_output_tokens: int | None = None


class ResponseTracker:
    """Active, requested and queued responses, which ones spoke, and the output buffer."""

    def __init__(self) -> None:
        """Start quiet."""
        self._requested: ResponseRequest | None = None
        """Sent, not yet known to have been accepted or refused."""
        self._active: str | None = None
        self._queue: deque[ResponseRequest] = deque()
        self._spoken: OrderedDict[str, None] = OrderedDict()
        self._streaming = False
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def busy(self) -> bool:
        """Return whether a response is requested, running or queued, or audio is streaming."""
        return not self._quiet.is_set()

    @property
    def response_active(self) -> bool:
        """Return whether a response is requested or running (a cancel would reach it)."""
        return self._requested is not None or self._active is not None

    def spoke(self, response_id: str) -> bool:
        """Return whether the response produced audio."""
        return response_id in self._spoken

    async def wait_quiet(self, seconds: float) -> bool:
        """Wait until quiet, at most seconds; return whether it is quiet."""
        try:
            async with asyncio.timeout(seconds):
                await self._quiet.wait()
        except TimeoutError:
            return False
        return True

    # --- Transitions: each returns the request to send now, if any ---------------------------

    def request(self, request: ResponseRequest) -> ResponseRequest | None:
        """Ask for a response: return it to send now, or None when it waits its turn."""
        if self.response_active:
            self._queue.append(request)
            self._settle()
            return None
        self._requested = request
        self._settle()
        return request

    def created(self, response_id: str) -> None:
        """Note that a response started, ours or the server's own."""
        self._active = response_id
        self._settle()

    def done(self, response_id: str) -> ResponseRequest | None:
        """Note that a response ended; return the next queued request to send."""
        if self._active in (response_id, SERVER_RESPONSE):
            self._active = None
        # A request not refused before a response ended was that response.
        self._requested = None
        return self._next()

    def refused(self, *, server_busy: bool) -> ResponseRequest | None:
        """Note that the server refused the last request; return what to send instead.

        When a response of the server's own was running, the request waits for it, whole.
        """
        request, self._requested = self._requested, None
        if server_busy and request is not None:
            self._queue.appendleft(request)
            self._active = self._active or SERVER_RESPONSE
            self._settle()
            return None
        return self._next()

    def cancel(self) -> bool:
        """Drop the queued requests; return whether one is requested or running to cancel."""
        self._queue.clear()
        self._settle()
        return self.response_active

    def audio_started(self, response_id: str) -> None:
        """Note that the server streams the response's audio."""
        self._streaming = True
        self._spoken[response_id] = None
        while len(self._spoken) > _SPOKEN_REMEMBERED:
            self._spoken.popitem(last=False)
        self._settle()

    def audio_ended(self) -> None:
        """Note that the server's output buffer drained or was cleared."""
        self._streaming = False
        self._settle()

    def reset(self) -> None:
        """Forget everything: the connection is gone, nothing runs any more."""
        self._requested = self._active = None
        self._queue.clear()
        self._streaming = False
        self._settle()

    def _next(self) -> ResponseRequest | None:
        if self._active is not None or not self._queue:
            self._settle()
            return None
        self._requested = self._queue.popleft()
        self._settle()
        return self._requested

    def _settle(self) -> None:
        if self.response_active or self._queue or self._streaming:
            self._quiet.clear()
        else:
            self._quiet.set()
