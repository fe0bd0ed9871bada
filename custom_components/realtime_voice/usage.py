"""UsageLedger: tokens and their estimated cost, per conversation and since the box was added.

The totals are kept in Home Assistant's storage, so they survive restarts.
"""

from __future__ import annotations

from typing import Final, TypedDict

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .realtime.events import Usage
from .state import Prices

_STORAGE_VERSION: Final = 1
_SAVE_DELAY: Final = 10  # seconds: coalesce the writes of a busy conversation


class _Stored(TypedDict):
    total_tokens: int
    total_cost: float


def _store(hass: HomeAssistant, entry_id: str) -> Store[_Stored]:
    return Store(hass, _STORAGE_VERSION, f"{DOMAIN}.{entry_id}.usage")


async def async_remove_usage(hass: HomeAssistant, entry_id: str) -> None:
    """Delete the stored totals of a box that is removed."""
    await _store(hass, entry_id).async_remove()


class UsageLedger:
    """Counts what conversations use."""

    def __init__(self, hass: HomeAssistant, entry_id: str, prices: Prices) -> None:
        """Start empty; async_load() reads the stored totals."""
        self._store = _store(hass, entry_id)
        self.prices = prices
        self.session = Usage()
        self.session_cost = 0.0
        self.total_tokens = 0
        self.total_cost = 0.0

    async def async_load(self) -> None:
        """Read the totals kept from earlier runs."""
        if stored := await self._store.async_load():
            self.total_tokens = stored["total_tokens"]
            self.total_cost = stored["total_cost"]

    def new_session(self) -> Usage:
        """Start counting a new conversation."""
        self.session, self.session_cost = Usage(), 0.0
        return self.session

    def add(self, usage: Usage) -> Usage:
        """Count one response's usage; return the conversation's usage so far."""
        cost = self.prices.cost(usage)
        self.session += usage
        self.session_cost += cost
        self.total_tokens += usage.total
        self.total_cost += cost
        self._store.async_delay_save(self._data, _SAVE_DELAY)
        return self.session

    @callback
    def async_save(self) -> None:
        """Write the totals soon."""
        self._store.async_delay_save(self._data, 0)

    def _data(self) -> _Stored:
        return {"total_tokens": self.total_tokens, "total_cost": self.total_cost}
