"""Onboard a running development Home Assistant and add Realtime Voice, through its REST API.

scripts/develop runs this after `hass` has started, so that a newcomer finds the integration
already set up against the simulator. It goes through Home Assistant's own onboarding and config
flow endpoints (what the browser does), not by writing `.storage` files whose format belongs to
Home Assistant. Each step is skipped when already done, so a restart changes nothing.
Usage: python scripts/develop_onboard.py HA_URL SIMULATOR_URL API_KEY
"""

from __future__ import annotations

from http import HTTPStatus
import json
import sys
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

# The development user; README.md and scripts/develop print them.
DEV_NAME = "Developer"
DEV_USER = "dev"
DEV_PASSWORD = "dev-password"  # noqa: S105 - a documented password of a local development server
DOMAIN = "realtime_voice"
ONBOARDING = ("user", "core_config", "analytics", "integration")


class HomeAssistant:
    """The few REST calls of onboarding, login and a config flow."""

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise SystemExit(f"not an http(s) URL: {url}")
        self.url = url.rstrip("/")
        self.client_id = f"{self.url}/"
        self.token: str | None = None

    def request(self, method: str, path: str, body: Any = None, *, form: bool = False) -> Any:
        """Send a request; return the JSON answer (None when there is none)."""
        headers = {}
        data = None
        if body is not None and form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url + path, data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            text = response.read().decode()
        return json.loads(text) if text else None

    def get_token(self, auth_code: str) -> None:
        """Exchange an authorization code for an access token."""
        answer = self.request(
            "POST",
            "/auth/token",
            {"grant_type": "authorization_code", "code": auth_code, "client_id": self.client_id},
            form=True,
        )
        self.token = answer["access_token"]

    def onboard_or_log_in(self) -> None:
        """Create the development user and finish onboarding, or log in as that user."""
        try:
            steps = self.request("GET", "/api/onboarding")
        except urllib.error.HTTPError as err:
            if err.code != HTTPStatus.NOT_FOUND:
                raise
            steps = []  # Home Assistant serves no onboarding views once onboarded
        done = {step["step"] for step in steps if step["done"]} if steps else set(ONBOARDING)
        if "user" in done:
            self.log_in()
        else:
            answer = self.request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": DEV_NAME,
                    "username": DEV_USER,
                    "password": DEV_PASSWORD,
                    "language": "en",
                },
            )
            self.get_token(answer["auth_code"])
            print(f"Onboarded: created the user {DEV_USER!r}")
        if "core_config" not in done:
            self.request("POST", "/api/onboarding/core_config")
        if "analytics" not in done:
            self.request("POST", "/api/onboarding/analytics")
        if "integration" not in done:
            self.request(
                "POST",
                "/api/onboarding/integration",
                {"client_id": self.client_id, "redirect_uri": f"{self.url}/?auth_callback=1"},
            )

    def log_in(self) -> None:
        """Log in with the development user's password."""
        flow = self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.url}/",
            },
        )
        answer = self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": DEV_USER, "password": DEV_PASSWORD},
        )
        if answer.get("type") != "create_entry":
            raise SystemExit(
                f"Cannot log in as {DEV_USER!r} (changed password?): {answer.get('errors')}; "
                "scripts/develop --reset starts over"
            )
        self.get_token(answer["result"])

    def add_integration(self, simulator_url: str, api_key: str) -> None:
        """Run the config flow with the simulator's URL and key and the default answers."""
        entries = self.request("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
        if entries:
            print(f"Realtime Voice is already set up ({len(entries)} entry)")
            return
        step = self.request(
            "POST",
            "/api/config/config_entries/flow",
            {"handler": DOMAIN, "show_advanced_options": True},
        )
        answers = {
            "user": {"api_key": api_key, "advanced": {"base_url": simulator_url}},
            "persona": {},  # the defaults
            "audio": {},  # "default": the virtual mic and speaker
        }
        while step["type"] == "form":
            if step.get("errors"):
                raise SystemExit(f"The config flow refused {step['step_id']}: {step['errors']}")
            step = self.request(
                "POST",
                f"/api/config/config_entries/flow/{step['flow_id']}",
                answers[step["step_id"]],
            )
        if step["type"] != "create_entry":
            raise SystemExit(f"The config flow ended with {step}")
        print(f"Added Realtime Voice against the simulator at {simulator_url}")


def main() -> None:
    """Onboard and add the integration."""
    url, simulator_url, api_key = sys.argv[1:4]
    home_assistant = HomeAssistant(url)
    home_assistant.onboard_or_log_in()
    home_assistant.add_integration(simulator_url, api_key)


if __name__ == "__main__":
    main()
