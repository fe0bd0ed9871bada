"""UsageLedger: tokens and their estimated cost, per conversation, day, month and in all.

The totals are kept in Home Assistant's storage, so they survive restarts (and a budget is
not reset by one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, NotRequired, TypedDict

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .budget import Spend
from .const import DOMAIN
from .pricing import ModelPrices, TranscriptionPrices
from .realtime.events import TranscriptionUsage, Usage

_STORAGE_VERSION: Final = 1
_SAVE_DELAY: Final = 10  # seconds: coalesce the writes of a busy conversation


class _Stored(TypedDict):
    total_tokens: int
    total_cost: float
    day: NotRequired[str]
    day_cost: NotRequired[float]
    month: NotRequired[str]
    month_cost: NotRequired[float]


def _store(hass: HomeAssistant, box_id: str) -> Store[_Stored]:
    """Return a box's store (a box moved from a version-1 entry has that entry's id)."""
    return Store(hass, _STORAGE_VERSION, f"{DOMAIN}.{box_id}.usage")


async def async_remove_usage(hass: HomeAssistant, box_id: str) -> None:
    """Delete the stored totals of a box that is removed."""
    await _store(hass, box_id).async_remove()


class UsageLedger:
    """Counts what conversations use and what it costs."""

    def __init__(
        self,
        hass: HomeAssistant,
        box_id: str,
        prices: ModelPrices,
        transcription_prices: TranscriptionPrices,
    ) -> None:
        """Start empty; async_load() reads the stored totals."""
        self._store = _store(hass, box_id)
        self.prices = prices
        self.transcription_prices = transcription_prices
        self.session = Usage()
        self.session_transcription = TranscriptionUsage()
        self.session_cost = 0.0
        self._dearest_response = 0.0
        self._dearest_transcription = 0.0
        self.total_tokens = 0
        self.total_cost = 0.0
        self._day, self._day_cost = "", 0.0
        self._month, self._month_cost = "", 0.0

    async def async_remove(self) -> None:
        """Delete the stored totals (the box was removed), and any write still pending."""
        await self._store.async_remove()

    async def async_load(self) -> None:
        """Read the totals kept from earlier runs."""
        if stored := await self._store.async_load():
            self.total_tokens = stored["total_tokens"]
            self.total_cost = stored["total_cost"]
            self._day, self._day_cost = stored.get("day", ""), stored.get("day_cost", 0.0)
            self._month, self._month_cost = stored.get("month", ""), stored.get("month_cost", 0.0)

    def new_session(self) -> Usage:
        """Start counting a new conversation."""
        self.session, self.session_cost = Usage(), 0.0
        self.session_transcription = TranscriptionUsage()
        self._dearest_response = self._dearest_transcription = 0.0
        return self.session

    @property
    def dearest_turn(self) -> float:
        """Return the cost of this conversation's dearest answer and transcription, in USD."""
        return self._dearest_response + self._dearest_transcription

    def spend(self) -> Spend:
        """Return today's, this month's and this conversation's cost (local time)."""
        self._roll_over(dt_util.now())
        return Spend(self._day_cost, self._month_cost, self.session_cost)

    def add(self, usage: Usage) -> float:
        """Count one response's usage; return its cost."""
        cost = self.prices.cost(usage)
        self.session += usage
        self.total_tokens += usage.total
        self._dearest_response = max(self._dearest_response, cost)
        self._spend(cost)
        return cost

    def add_transcription(self, usage: TranscriptionUsage) -> float:
        """Count one transcription's usage; return its cost."""
        cost = self.transcription_prices.cost(usage)
        self.session_transcription += usage
        self._dearest_transcription = max(self._dearest_transcription, cost)
        self._spend(cost)
        return cost

    @callback
    def async_save(self) -> None:
        """Write the totals soon."""
        self._store.async_delay_save(self._data, 0)

    def _spend(self, cost: float) -> None:
        self._roll_over(dt_util.now())
        self.session_cost += cost
        self.total_cost += cost
        self._day_cost += cost
        self._month_cost += cost
        self._store.async_delay_save(self._data, _SAVE_DELAY)

    def _roll_over(self, now: datetime) -> None:
        """Start a new day's and a new month's count when they begin."""
        day, month = now.date().isoformat(), now.strftime("%Y-%m")
        if day != self._day:
            self._day, self._day_cost = day, 0.0
        if month != self._month:
            self._month, self._month_cost = month, 0.0

    def _data(self) -> _Stored:
        return {
            "total_tokens": self.total_tokens,
            "total_cost": self.total_cost,
            "day": self._day,
            "day_cost": self._day_cost,
            "month": self._month,
            "month_cost": self._month_cost,
        }
