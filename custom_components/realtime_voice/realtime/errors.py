"""Errors of the Realtime client; each carries the server's own message, never the API key."""

from __future__ import annotations


class RealtimeError(Exception):
    """Base of every error the Realtime client raises."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        """Keep the server's message, its error code and the HTTP status, when there was one."""
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class AuthenticationError(RealtimeError):
    """The API key was refused (HTTP 401)."""


class QuotaError(RealtimeError):
    """The account has no quota left (HTTP 429 `insufficient_quota`): the user must act."""


class RateLimitError(RealtimeError):
    """Too many requests (HTTP 429 other than quota): trying later helps."""


class ConnectError(RealtimeError):
    """The call could not be set up: network, timeout, ICE or a server error (5xx)."""


class ProtocolError(RealtimeError):
    """The server refused what we sent (HTTP 400, an `error` event) or answered nonsense."""


class ModelUnavailableError(ProtocolError):
    """OpenAI refused the model: unknown, shut down, not open to this key, or not a Realtime one."""


MODEL_ERROR_CODES = frozenset({"model_not_found", "invalid_model"})
"""OpenAI's codes for a refused model (HTTP, `error` events and failed responses)."""


class NotConnectedError(RealtimeError):
    """An event was sent while the data channel is not open."""
