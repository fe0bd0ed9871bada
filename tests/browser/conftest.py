"""Fixtures of the tests of scripts/develop: a real `hass` process, not the harness's.

These tests drive the Home Assistant that scripts/develop starts (through Chromium or its REST
API), so the harness's `hass` fixture has no part in them: the autouse fixtures of
tests/conftest.py that need it are replaced here by fixtures that do nothing.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import time
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
STARTUP_SECONDS = 240
READY = re.compile(r"Home Assistant is ready at (\S+)")


class DevServer(NamedTuple):
    """Where scripts/develop's Home Assistant and simulator listen, and which release it is."""

    url: str
    simulator_url: str
    version: str


def home_assistant_version() -> str:
    """Return the Home Assistant release scripts/develop runs.

    RV_HASS_VENV's (scripts/test-newest-ha: the newest), else the one the harness pins.
    """
    if venv := os.environ.get("RV_HASS_VENV"):
        code = "from homeassistant.const import __version__; print(__version__)"
        answer = subprocess.run(  # that environment's own Python
            [f"{venv}/bin/python", "-c", code], capture_output=True, text=True, check=True
        )
        return answer.stdout.strip()
    from homeassistant.const import __version__  # noqa: PLC0415 - only without RV_HASS_VENV

    return __version__


@pytest.fixture
def auto_enable_custom_integrations() -> None:
    """Not here: `hass -c` loads the integration from the config folder's custom_components."""


@pytest.fixture
def setup_homeassistant() -> None:
    """Not here: there is no harness `hass` to set up."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, for fixtures that act on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def artifacts() -> Path:
    """Return the folder for screenshots and logs (artifacts/ is git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@contextmanager
def _develop(directory: Path, artifacts: Path, *, fresh: bool) -> Iterator[DevServer]:
    """Run scripts/in-env/develop on a config folder in directory; yield its URLs.

    The virtual devices are those scripts/test started. Its log and Home Assistant's are copied
    to the artifacts at the end.
    """
    config = directory / "config"
    output = directory / "develop.log"
    simulator_port = _free_port()
    command = [
        *("scripts/in-env/develop", "--config", str(config)),
        *("--port", str(_free_port()), "--simulator-port", str(simulator_port)),
    ]
    if fresh:
        command.append("--fresh")
    else:
        # As in the repository's dev-config: its tracked files, no runtime state yet.
        config.mkdir()
        for tracked in ("configuration.yaml", "realtime-voice-dashboard.yaml"):
            shutil.copy(REPO / "dev-config" / tracked, config)
    with output.open("wb") as log:
        process = subprocess.Popen(  # the repository's own script
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        # Home Assistant, the simulator and onboarding take ~30 s on an idle two-core machine and
        # over 90 s on one this busy with other jobs (a CI runner's neighbours): bound generously.
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (ready := READY.search(output.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"scripts/develop did not start:\n{output.read_text()[-4000:]}")
            time.sleep(0.2)
        yield DevServer(
            ready.group(1), f"http://127.0.0.1:{simulator_port}", home_assistant_version()
        )
    finally:
        # Its trap stops Home Assistant and the simulator; if it hangs, its process group (its
        # own, by start_new_session) goes.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        name = "fresh" if fresh else "seeded"
        shutil.copy(output, artifacts / f"develop-{name}.log")
        if (log_file := config / "home-assistant.log").exists():
            shutil.copy(log_file, artifacts / f"home-assistant-{name}.log")


@pytest.fixture
def fresh_dev_server(
    socket_enabled: None, virtual_audio: None, tmp_path: Path, artifacts: Path
) -> Iterator[DevServer]:
    """`scripts/develop --fresh`: a new config folder, not onboarded, nothing set up."""
    with _develop(tmp_path, artifacts, fresh=True) as server:
        yield server


@pytest.fixture
def dev_server(
    socket_enabled: None, virtual_audio: None, tmp_path: Path, artifacts: Path
) -> Iterator[DevServer]:
    """`scripts/develop` as a newcomer runs it: onboarded, Realtime Voice set up."""
    with _develop(tmp_path, artifacts, fresh=False) as server:
        yield server
