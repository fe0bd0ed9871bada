"""Constants for Realtime Voice."""

from typing import Final

DOMAIN: Final = "realtime_voice"
