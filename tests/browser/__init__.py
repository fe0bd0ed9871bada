"""Browser tests: Chromium driving the real Home Assistant that scripts/develop starts."""
