"""scripts/develop as a newcomer runs it: onboarded, the integration set up, a conversation.

No browser here (tests/browser/test_dashboard.py has one): the REST API, as the development user
that scripts/develop documents, presses the start button and reads the entities.
"""

from __future__ import annotations

from collections.abc import Callable
import ipaddress
from pathlib import Path
import time
from urllib.parse import urlsplit

import pytest

from scripts.develop_onboard import HomeAssistant
from tests.helpers.virtual_audio import play_into_mic, speech_wav
from tests.simulator.script import DEFAULT_REPLY, DEFAULT_USER_TRANSCRIPT

from .conftest import DevServer


def _until(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.1)


def _listening_addresses(port: int) -> set[str]:
    """Return the addresses this machine's TCP sockets listen on at port (from /proc/net)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                # The kernel prints each 32-bit word of the address in host (little) order.
                words = [address[i : i + 8] for i in range(0, len(address), 8)]
                raw = b"".join(bytes.fromhex(word)[::-1] for word in words)
                addresses.add(str(ipaddress.ip_address(raw)))
    return addresses


@pytest.mark.timeout(420)  # startup bound (240 s) and the test's own waits
def test_develop_starts_with_the_integration_set_up(dev_server: DevServer, tmp_path: Path) -> None:
    home_assistant = HomeAssistant(dev_server.url)
    home_assistant.log_in()  # as dev / dev-password, which scripts/develop prints
    # A known login: nobody else on the network may reach it.
    port = urlsplit(dev_server.url).port
    assert port is not None
    assert _listening_addresses(port) == {"127.0.0.1"}

    def state(entity_id: str) -> str:
        answer: dict[str, str] = home_assistant.request("GET", f"/api/states/{entity_id}")
        return answer["state"]

    # The release it was meant to be (scripts/test-newest-ha: the newest one).
    assert home_assistant.request("GET", "/api/config")["version"] == dev_server.version
    entries = home_assistant.request(
        "GET", "/api/config/config_entries/entry?domain=realtime_voice"
    )
    assert [entry["state"] for entry in entries] == ["loaded"]
    assert state("sensor.realtime_voice_state") == "idle"

    home_assistant.request(
        "POST",
        "/api/services/button/press",
        {"entity_id": "button.realtime_voice_start_conversation"},
    )
    _until(lambda: state("sensor.realtime_voice_state") == "listening")
    play_into_mic(speech_wav(tmp_path / "hello.wav", "Hello, can you help me?"))
    _until(lambda: state("sensor.realtime_voice_last_user_transcript") == DEFAULT_USER_TRANSCRIPT)
    _until(lambda: state("sensor.realtime_voice_last_assistant_transcript") == DEFAULT_REPLY.text)
