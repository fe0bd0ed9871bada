"""Long-term statistics of the token and cost sensors, in a real recorder (SQLite in memory)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.statistics import get_metadata, statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    get_start_time,
)

from custom_components.realtime_voice.const import DOMAIN, EVENT_USAGE
from tests.helpers.integration import (
    COST,
    TOKENS,
    EventLog,
    assert_recovered,
    box_entry,
    running_box,
)

from .simulator import Simulator
from .test_models_and_spending import _response_done
from .test_pricing import GA_RESPONSE_USAGE

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_db_url: str, enable_custom_integrations: None) -> None:
    """Load custom integrations; the recorder's database is prepared before Home Assistant."""


async def _call(hass: HomeAssistant, action: str) -> None:
    await hass.services.async_call(DOMAIN, action, {}, blocking=True)


async def test_token_and_cost_statistics(
    recorder_mock: Recorder, hass: HomeAssistant, simulator: Simulator
) -> None:
    """Long-term statistics keep a sum of tokens and of USD: spend per day and per month."""
    started = dt_util.utcnow()
    async with running_box(hass, box_entry(simulator)):
        usage_events = EventLog(hass, EVENT_USAGE)
        for _conversation in range(2):
            await _call(hass, "start_conversation")
            call = await simulator.wait_for_call()
            await call.send(_response_done(GA_RESPONSE_USAGE))
            await usage_events.wait_for(lambda _data, n=_conversation: len(usage_events.events) > n)
            await _call(hass, "end_conversation")
        cost = float(hass.states.get(COST).state)
        await async_wait_recording_done(hass)
        period = get_start_time(started)
        for start in (period, period + timedelta(minutes=5)):  # the run may cross a boundary
            do_adhoc_statistics(hass, start=start)
        await async_wait_recording_done(hass)

        ids = {TOKENS, COST}
        metadata = await recorder_mock.async_add_executor_job(
            partial(get_metadata, hass, statistic_ids=ids)
        )
        assert metadata[COST][1]["unit_of_measurement"] == "USD"
        assert metadata[COST][1]["has_sum"]
        assert metadata[TOKENS][1]["unit_of_measurement"] == "tokens"
        assert metadata[TOKENS][1]["has_sum"]
        rows = await recorder_mock.async_add_executor_job(
            statistics_during_period, hass, period, None, ids, "5minute", None, {"sum"}
        )
        assert rows[TOKENS][-1]["sum"] == 2 * 253  # both conversations
        assert rows[COST][-1]["sum"] == pytest.approx(cost, abs=1e-6)
        await assert_recovered(hass, simulator)
