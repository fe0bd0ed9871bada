"""OpenAI's HTTP side against small real HTTP servers on loopback: what a broken answer gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import aiohttp
from aiohttp import web
import pytest

from custom_components.realtime_voice.realtime.errors import ProtocolError
from custom_components.realtime_voice.realtime.http import (
    ModelInfo,
    RealtimeHttp,
    parse_models,
)
from custom_components.realtime_voice.realtime.session_config import (
    FunctionSpec,
    SessionConfig,
    Truncation,
    TurnDetection,
)
from tests.helpers.loopback_http import serve_on_loopback

KEY = "sk-test-never-shown"


@pytest.fixture
async def server(socket_enabled: None) -> AsyncIterator[str]:
    """Serve an endpoint that answers nonsense where OpenAI answers JSON or SDP."""

    async def models(_request: web.Request) -> web.Response:
        return web.Response(text="<html>a captive portal</html>")

    async def calls(_request: web.Request) -> web.Response:
        return web.Response(text="<html>a captive portal</html>", status=201)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/realtime/calls", calls)
    async with serve_on_loopback(app) as url:
        yield f"{url}/"


async def test_an_answer_that_is_not_what_openai_sends_is_a_protocol_error(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        http = RealtimeHttp(session, server, KEY)
        with pytest.raises(ProtocolError, match="not JSON"):
            await http.list_models()
        with pytest.raises(ProtocolError, match="not SDP"):
            await http.create_call("v=0 offer", SessionConfig())


def test_the_key_is_never_shown() -> None:
    """repr() names the endpoint, never the key (a log line, a traceback)."""
    http = RealtimeHttp(None, "https://api.openai.com/", KEY)  # type: ignore[arg-type]
    assert KEY not in repr(http)
    assert "api.openai.com" in repr(http)


def test_a_model_list_of_another_shape_lists_nothing_and_bad_dates_are_no_dates() -> None:
    assert parse_models({"data": "models"}) == ()
    assert parse_models(["gpt-realtime"]) == ()
    assert parse_models({"data": [{"id": "m", "created": "soon", "shutdown_date": "someday"}]}) == (
        ModelInfo("m"),
    )
    assert parse_models({"data": [{"id": "m", "shutdown_date": "2027-01-19T00:00:00Z"}]}) == (
        ModelInfo("m", shutdown_date=date(2027, 1, 19)),
    )


def test_the_session_object_follows_the_ga_shapes() -> None:
    """The GA session: semantic VAD, a language, a truncation limit and a function tool."""
    wire = SessionConfig(
        turn_detection=TurnDetection(type="semantic_vad", eagerness="low"),
        transcription_language="de",
        truncation=Truncation(retention_ratio=0.5, post_instructions_tokens=4000),
        tools=(FunctionSpec("end_session", "End the conversation."),),
    ).to_wire()
    audio_in = wire["audio"]["input"]
    assert audio_in["turn_detection"]["type"] == "semantic_vad"
    assert audio_in["turn_detection"]["eagerness"] == "low"
    assert audio_in["transcription"]["language"] == "de"
    assert wire["truncation"]["token_limits"] == {"post_instructions": 4000}
    assert wire["tools"] == [
        {
            "type": "function",
            "name": "end_session",
            "description": "End the conversation.",
            "parameters": {"type": "object", "properties": {}},
        }
    ]
