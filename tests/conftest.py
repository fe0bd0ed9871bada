"""Fixtures shared by the tests."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from .virtual_audio import require_virtual_audio


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load integrations from custom_components in every test."""


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up the core `homeassistant` component, which conversation (Assist) needs."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
def virtual_audio() -> None:
    """Require the PulseAudio virtual devices that scripts/test starts."""
    require_virtual_audio()
