"""ToolRouter: what the model may call, and calling it safely.

Tools come from Home Assistant's LLM API (the Assist API by default, which only reaches entities
exposed to Assist), plus the built-in `end_session`. Whatever the model sends, the answer is a
`function_call_output` it can read: bad arguments, unknown tools, failures, refusals and time-outs
included. Actions on high-risk entities (locks, alarm panels, garage doors, gates, doors and what
the user marks) are refused unless the user allowed them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import json
import time
from typing import Any, Final

from homeassistant.components.conversation import DOMAIN as CONVERSATION_DOMAIN
from homeassistant.components.homeassistant.exposed_entities import async_should_expose
from homeassistant.core import Context, HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import intent, llm
import probatio

from .const import DOMAIN, EVENT_TOOL_CALL, LOGGER
from .realtime.events import FunctionCall, JsonObject, function_call_output
from .user_tools import UserTool

END_SESSION: Final = "end_session"
MAX_OUTPUT_CHARS: Final = 16_000
"""A tool result larger than this is cut: the model's context is small and billed."""
RISKY_DOMAINS: Final = frozenset({"lock", "alarm_control_panel"})
RISKY_COVER_CLASSES: Final = frozenset({"garage", "door", "gate"})

_END_SESSION_SPEC: Final[JsonObject] = {
    "type": "function",
    "name": END_SESSION,
    "description": (
        "End the conversation. Call it when the user says goodbye or asks you to stop "
        "listening. Say a short goodbye in `goodbye`; it is spoken before the line closes."
    ),
    "parameters": {
        "type": "object",
        "properties": {"goodbye": {"type": "string", "description": "A short goodbye."}},
    },
}


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """What the user allows the model to do."""

    llm_apis: tuple[str, ...] = (llm.LLM_API_ASSIST,)
    allow_risky: bool = False
    """Allow actions on locks, alarm panels, garage doors, doors and gates."""
    risky_entities: frozenset[str] = frozenset()
    """Entities the user marked as high risk, too."""
    timeout: float = 10.0
    max_calls_per_turn: int = 5
    user_tools: tuple[UserTool, ...] = ()
    allowed_actions: frozenset[str] = frozenset()
    """The actions user tools may call; a user tool whose action is not here is not offered."""

    def offered_user_tools(self) -> list[UserTool]:
        """Return the user tools whose action is on the allowlist."""
        return [tool for tool in self.user_tools if tool.action in self.allowed_actions]


@dataclass(frozen=True, slots=True)
class PreparedTools:
    """Tools and the prompt that describes them, for one conversation."""

    specs: tuple[JsonObject, ...]
    prompt: str


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a call produced: the event that answers the model, and whether to hang up."""

    output_event: JsonObject
    end_session: bool = False
    goodbye: str | None = None


@dataclass(slots=True)
class _Turn:
    calls: int = 0
    started: float = field(default_factory=time.monotonic)


class ToolRefusedError(HomeAssistantError):
    """The policy does not allow this call."""


class ToolRouter:
    """Tool specs for the session, and safe execution of the model's calls."""

    def __init__(self, hass: HomeAssistant, policy: ToolPolicy) -> None:
        """Route calls under the user's policy."""
        self.hass = hass
        self.policy = policy
        self._api: llm.APIInstance | None = None
        self._turn = _Turn()

    async def async_prepare(self, device_id: str | None) -> PreparedTools:
        """Get the LLM API's tools for this box; end_session is always there."""
        self._api = None
        specs: list[JsonObject] = [_END_SESSION_SPEC]
        prompt = ""
        if self.policy.llm_apis:
            self._api = await llm.async_get_api(
                self.hass, list(self.policy.llm_apis), self._context(device_id)
            )
            specs.extend(
                _format_tool(tool, self._api.custom_serializer) for tool in self._api.tools
            )
            prompt = self._api.api_prompt
        specs.extend(tool.spec() for tool in self.policy.offered_user_tools())
        return PreparedTools(tuple(specs), prompt)

    def new_turn(self) -> None:
        """Start the per-turn call budget again: the user spoke."""
        self._turn = _Turn()

    async def async_call(self, call: FunctionCall, device_id: str | None) -> ToolOutcome:
        """Run one function call; every failure becomes an error output for the model."""
        started = time.monotonic()
        try:
            arguments = _parse_arguments(call.arguments)
            if call.name == END_SESSION:
                goodbye = arguments.get("goodbye")
                outcome = ToolOutcome(
                    function_call_output(call.call_id, json.dumps({"success": True})),
                    end_session=True,
                    goodbye=goodbye if isinstance(goodbye, str) else None,
                )
                self._audit(call, arguments, "ended", started)
                return outcome
            data = await self._run(call.name, arguments, device_id)
        except (HomeAssistantError, probatio.Invalid, ValueError) as err:
            self._audit(call, None, f"error: {err}", started)
            return self._output(call, {"error": type(err).__name__, "error_text": str(err)})
        except TimeoutError:
            text = f"The tool did not finish within {self.policy.timeout:g} seconds."
            self._audit(call, None, "timeout", started)
            return self._output(call, {"error": "Timeout", "error_text": text})
        except asyncio.CancelledError:
            self._audit(call, None, "cancelled", started)  # the conversation ended meanwhile
            raise
        self._audit(call, None, "error" if data.get("error") else "success", started)
        return self._output(call, data)

    async def _run(self, name: str, arguments: dict[str, Any], device_id: str | None) -> JsonObject:
        """Check the call against the policy, then run it through the LLM API."""
        self._turn.calls += 1
        if self._turn.calls > self.policy.max_calls_per_turn:
            raise HomeAssistantError(
                f"Too many tool calls in one turn (limit {self.policy.max_calls_per_turn}). "
                "Stop calling tools and answer the user."
            )
        if user_tool := next((t for t in self.policy.offered_user_tools() if t.name == name), None):
            return await self._run_user_tool(user_tool, arguments)
        if self._api is None:
            raise HomeAssistantError(f'Tool "{name}" not found')
        tool = next((tool for tool in self._api.tools if tool.name == name), None)
        if tool is None:
            raise HomeAssistantError(f'Tool "{name}" not found')
        arguments = tool.parameters(arguments)
        self._check_policy(tool, arguments)
        self._api.llm_context.device_id = device_id
        async with asyncio.timeout(self.policy.timeout):
            result = await self._api.async_call_tool(llm.ToolInput(name, arguments))
        data = dict(result.data)
        if result.error:
            data.setdefault("error", True)
        return data

    async def _run_user_tool(self, tool: UserTool, arguments: dict[str, Any]) -> JsonObject:
        """Run an owner-described action, on exposed, allowed entities only."""
        tool.check_arguments(arguments)
        targets = {**tool.data, **arguments}.get("entity_id", [])
        for entity_id in [targets] if isinstance(targets, str) else list(targets):
            state = self.hass.states.get(entity_id)
            if state is None or not async_should_expose(self.hass, CONVERSATION_DOMAIN, entity_id):
                raise ToolRefusedError(f"{entity_id} is not exposed to the assistant")
            if self._is_risky(state) and not self.policy.allow_risky:
                raise ToolRefusedError(_refusal([state.name]))
        async with asyncio.timeout(self.policy.timeout):
            return await tool.async_run(self.hass, arguments, Context())

    def _check_policy(self, tool: llm.Tool, arguments: dict[str, Any]) -> None:
        """Refuse a call that may act on a high-risk entity the user did not allow."""
        if self.policy.allow_risky or tool.annotations.read_only:
            return
        risky = [state.name for state in self._targets(tool, arguments) if self._is_risky(state)]
        if risky:
            raise ToolRefusedError(_refusal(risky))

    def _targets(self, tool: llm.Tool, arguments: dict[str, Any]) -> list[State]:
        """Return the exposed entities an intent call would act on (empty if not an intent)."""
        if not isinstance(tool, llm.IntentTool):
            return []
        domains = arguments.get("domain")
        classes = arguments.get("device_class")
        constraints = intent.MatchTargetsConstraints(
            name=arguments.get("name"),
            area_name=arguments.get("area"),
            floor_name=arguments.get("floor"),
            domains=[domains] if isinstance(domains, str) else domains,
            device_classes=[classes] if isinstance(classes, str) else classes,
            assistant=CONVERSATION_DOMAIN,
            allow_duplicate_names=True,
        )
        return intent.async_match_targets(self.hass, constraints).states

    def _is_risky(self, state: State) -> bool:
        """Return whether an entity is one the user must allow explicitly."""
        if state.entity_id in self.policy.risky_entities or state.domain in RISKY_DOMAINS:
            return True
        return (
            state.domain == "cover" and state.attributes.get("device_class") in RISKY_COVER_CLASSES
        )

    def _context(self, device_id: str | None) -> llm.LLMContext:
        return llm.LLMContext(
            platform=DOMAIN,
            context=Context(),
            language=self.hass.config.language,
            assistant=CONVERSATION_DOMAIN,
            device_id=device_id,
        )

    def _output(self, call: FunctionCall, data: JsonObject) -> ToolOutcome:
        """Encode a result for the model, cut to MAX_OUTPUT_CHARS."""
        text = json.dumps(data, default=str, ensure_ascii=False)
        if len(text) > MAX_OUTPUT_CHARS:
            text = text[:MAX_OUTPUT_CHARS] + " …(cut)"
        return ToolOutcome(function_call_output(call.call_id, text))

    def _audit(
        self, call: FunctionCall, arguments: dict[str, Any] | None, outcome: str, started: float
    ) -> None:
        """Fire realtime_voice_tool_call for the logbook and audits."""
        if arguments is None:
            try:
                arguments = _parse_arguments(call.arguments)
            except ValueError:
                arguments = {"raw": call.arguments[:500]}
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        LOGGER.debug("Tool %s %s in %s ms", call.name, outcome, duration_ms)
        self.hass.bus.async_fire(
            EVENT_TOOL_CALL,
            {
                "tool": call.name,
                "arguments": arguments,
                "outcome": outcome,
                "duration_ms": duration_ms,
            },
        )


def _refusal(names: list[str]) -> str:
    """Explain a refusal in words the model can pass on."""
    return (
        f"Not allowed: {', '.join(names)} cannot be operated by voice on this assistant. "
        "Tell the user that the owner can allow it in the Realtime Voice options."
    )


def _parse_arguments(text: str) -> dict[str, Any]:
    """Decode the model's arguments: a JSON object, or nothing at all."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ValueError(f"The arguments are not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ValueError("The arguments must be a JSON object")  # noqa: TRY004 - bad input, not a bug
    return value


def _format_tool(tool: llm.Tool, custom_serializer: Any) -> JsonObject:
    """Describe an LLM API tool as a Realtime function, the way core integrations do."""
    schema: JsonObject = probatio.to_openapi(
        tool.parameters, custom_serializer=custom_serializer, openapi_version="3.1.0"
    )
    # The Realtime API takes a plain object schema; combinators at the top level are refused.
    schema = {
        key: value
        for key, value in schema.items()
        if key not in {"oneOf", "anyOf", "allOf", "enum", "not"}
    }
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return {
        "type": "function",
        "name": tool.name,
        "description": (tool.description or tool.name)[:1024],
        "parameters": schema,
    }
