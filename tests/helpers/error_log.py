"""The ERROR records a test must not leave: ours, the simulator's, aiortc's, aioice's, asyncio's.

asyncio reports a task whose exception nobody retrieved ("Task exception was never retrieved")
only when the task is garbage collected, often out of a reference cycle. ErrorLog.unexpected()
collects first, so such a task is blamed on the test that left it, not on a later one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import gc
import logging
from typing import Final, override

from _pytest.logging import caplog_records_key
import pytest

WATCHED_LOGGERS: Final = (
    "custom_components.realtime_voice",
    "tests",
    "aiortc",
    "aioice",
    "asyncio",
)
"""Loggers whose ERROR records fail a test (with the loggers below them): the integration, the
simulator and what they run on."""
LOOP_LOGGER: Final = "homeassistant"
"""Home Assistant's event loop exception handler logs here (not on `asyncio`), and only it."""


def _watched(name: str) -> bool:
    """Return whether a record of this logger counts."""
    return name == LOOP_LOGGER or any(
        name == watched or name.startswith(f"{watched}.") for watched in WATCHED_LOGGERS
    )


def _describe(record: logging.LogRecord) -> str:
    """Return a record's logger, message and exception, in one line."""
    exception = record.exc_info[1] if record.exc_info else None
    return f"{record.name}: {record.getMessage()}" + (f" ({exception!r})" if exception else "")


class ErrorLog(logging.Handler):
    """Collects the ERROR records of the watched loggers while it is installed."""

    def __init__(self, item: pytest.Item) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._item = item
        self._expected: list[str] = []

    @classmethod
    @contextmanager
    def watching(cls, item: pytest.Item) -> Iterator[ErrorLog]:
        """Install a log for a test on the root logger for the duration of the block."""
        log = cls(item)
        root = logging.getLogger()
        root.addHandler(log)
        try:
            yield log
        finally:
            root.removeHandler(log)

    def expect(self, text: str) -> None:
        """Allow ERROR records whose message contains text (a test that causes them on purpose)."""
        self._expected.append(text)

    def unexpected(self) -> list[str]:
        """Collect garbage (unretrieved task exceptions), then return the unexpected records.

        Each record is returned once: a test that checked them is not failed again at its end.
        """
        self._release_captured_records()
        gc.collect()
        records, self.records = self.records, []
        return [
            _describe(record)
            for record in records
            if not any(text in record.getMessage() for text in self._expected)
        ]

    def _release_captured_records(self) -> None:
        """Make pytest's captured records of the test let go of their arguments.

        pytest keeps every record until the test ends; a record's arguments and exception hold
        tracebacks, their frames and the tasks in them, which then cannot be collected in time.
        The captured text is written already; only `caplog.records` would show the difference.
        """
        for records in self._item.stash.get(caplog_records_key, {}).values():
            for record in records:
                record.msg, record.args = record.getMessage(), None
                record.exc_info = None

    @override
    def emit(self, record: logging.LogRecord) -> None:
        if _watched(record.name):
            self.records.append(record)
