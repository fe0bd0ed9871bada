"""ToolRouter: what the model may call, and calling it safely.

Tools come from Home Assistant's LLM APIs (the Assist API by default, which only reaches entities
exposed to Assist), the owner's user tools, and the built-in `end_session`. Whatever the model
sends, the answer is a `function_call_output` it can read: bad arguments, unknown tools,
failures, refusals and time-outs included.

Before a call runs, the router resolves what it would change (targets.py) and decides on those
entities: every entity it acts on must be exposed to Assist; a high-risk one (risk.py) is
refused unless the owner allowed high-risk actions, and then runs only once the user confirmed
it by voice (confirmations.py). A call whose targets cannot be known is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import json
import time
from typing import Any, Final

from homeassistant.components.conversation import DOMAIN as CONVERSATION_DOMAIN
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import llm
from homeassistant.helpers.intent import is_blank_slot_value
import probatio

from .confirmations import CONFIRMATION_SECONDS, Confirmations
from .const import DOMAIN, EVENT_TOOL_CALL, LOGGER
from .realtime.events import FunctionCall
from .realtime.session_config import FunctionSpec, JsonObject
from .risk import RiskRules
from .targets import Resolution, resolve_action_call, resolve_tool_call
from .tool_batches import FollowUp
from .user_tools import UserTool

END_SESSION: Final = "end_session"
MAX_OUTPUT_CHARS: Final = 16_000
"""A tool result larger than this is cut: the model's context is small and billed."""

_END_SESSION_SPEC: Final = FunctionSpec(
    name=END_SESSION,
    description=(
        "End the conversation. Call it when the user says goodbye or asks you to stop "
        "listening. Say a short goodbye in `goodbye`; it is spoken before the line closes."
    ),
    parameters={
        "type": "object",
        "properties": {"goodbye": {"type": "string", "description": "A short goodbye."}},
    },
)


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """What the user allows the model to do."""

    llm_apis: tuple[str, ...] = (llm.LLM_API_ASSIST,)
    allow_risky: bool = False
    """Allow actions on locks, alarm panels, garage doors, doors, gates and what is marked."""
    confirm_risky: bool = True
    """Allowed high-risk actions still wait for the user's spoken confirmation."""
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

    specs: tuple[FunctionSpec, ...]
    prompt: str


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a call produced: the output that answers the model, and what follows it."""

    call_id: str
    output: str
    follow_up: FollowUp = FollowUp.ANSWER
    goodbye: str | None = None

    @property
    def end_session(self) -> bool:
        """Return whether the model asked to hang up."""
        return self.follow_up is FollowUp.END


@dataclass(slots=True)
class _Turn:
    calls: int = 0
    stopped: bool = False
    """The model was told the limit and given its last response of the turn."""
    started: float = field(default_factory=time.monotonic)


class ToolRefusedError(HomeAssistantError):
    """The policy does not allow this call."""


class ToolLimitError(HomeAssistantError):
    """The model called more tools in one turn than the owner allows."""


class ConfirmationRequiredError(HomeAssistantError):
    """A high-risk call waits for the user's spoken confirmation."""

    def __init__(self, names: list[str]) -> None:
        """Ask about the entities named."""
        super().__init__(_confirmation_text(names))
        self.names = names


class ToolRouter:
    """Tool specs for the session, and safe execution of the model's calls."""

    def __init__(self, hass: HomeAssistant, policy: ToolPolicy) -> None:
        """Route calls under the user's policy."""
        self.hass = hass
        self.policy = policy
        self._api: llm.APIInstance | None = None
        self._turn = _Turn()
        self._confirmations = Confirmations()

    async def async_prepare(self, device_id: str | None) -> PreparedTools:
        """Get the LLM API's tools for this box; end_session is always there."""
        self._api = None
        self._turn = _Turn()
        self._confirmations = Confirmations()
        specs: list[FunctionSpec] = [_END_SESSION_SPEC]
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
        """Start the per-turn call budget again: the user started speaking."""
        self._turn = _Turn()

    def user_spoke(self, item_id: str | None = None) -> None:
        """Note a user utterance (a committed turn, a transcript, typed text).

        A new one starts a new turn and may answer a confirmation question; item_id makes the
        late transcript of an utterance already counted count for nothing.
        """
        if self._confirmations.user_spoke(item_id):
            self.new_turn()

    async def async_call(self, call: FunctionCall, device_id: str | None) -> ToolOutcome:
        """Run one function call; every failure becomes an error output for the model."""
        started = time.monotonic()
        try:
            arguments = _parse_arguments(call.arguments)
            if call.name == END_SESSION:
                goodbye = arguments.get("goodbye")
                outcome = ToolOutcome(
                    call.call_id,
                    json.dumps({"success": True}),
                    follow_up=FollowUp.END,
                    goodbye=goodbye if isinstance(goodbye, str) else None,
                )
                self._audit(call, arguments, "ended", started)
                return outcome
            data = await self._run(call.name, arguments, device_id)
        except (HomeAssistantError, probatio.Invalid, ValueError, TimeoutError) as err:
            return self._failed(call, err, started)
        except asyncio.CancelledError:
            self._audit(call, None, "cancelled", started)  # the conversation ended meanwhile
            raise
        self._audit(call, None, "error" if data.get("error") else "success", started)
        return self._output(call, data)

    def _failed(self, call: FunctionCall, err: Exception, started: float) -> ToolOutcome:
        """Audit a call that did not run (or failed), and tell the model why."""
        match err:
            case ToolLimitError():
                self._audit(call, None, "refused", started, reason=str(err))
                return self._output(call, _error(err), follow_up=self._stop_turn())
            case ConfirmationRequiredError():
                self._audit(call, None, "confirmation_required", started, reason=str(err))
                return self._output(call, _confirmation(err))
            case ToolRefusedError():
                self._audit(call, None, "refused", started, reason=str(err))
                return self._output(call, _error(err))
            case TimeoutError():
                text = f"The tool did not finish within {self.policy.timeout:g} seconds."
                self._audit(call, None, "timeout", started)
                return self._output(call, {"error": "Timeout", "error_text": text})
        self._audit(call, None, f"error: {err}", started)
        return self._output(call, _error(err))

    def _stop_turn(self) -> FollowUp:
        """Let the model answer once without tools after the limit; after that, not at all."""
        if self._turn.stopped:
            return FollowUp.NONE
        self._turn.stopped = True
        return FollowUp.ANSWER_WITHOUT_TOOLS

    async def _run(self, name: str, arguments: dict[str, Any], device_id: str | None) -> JsonObject:
        """Check the call against the policy, then run it through the LLM API."""
        self._turn.calls += 1
        if self._turn.calls > self.policy.max_calls_per_turn:
            raise ToolLimitError(
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
        arguments = _validated(tool, arguments)
        self._api.llm_context.device_id = device_id
        resolution = resolve_tool_call(self.hass, tool, arguments, self._api.llm_context)
        self._decide(name, arguments, resolution)
        async with asyncio.timeout(self.policy.timeout):
            result = await self._api.async_call_tool(llm.ToolInput(name, arguments))
        data = dict(result.data)
        if result.error:
            data.setdefault("error", True)
        return data

    async def _run_user_tool(self, tool: UserTool, arguments: dict[str, Any]) -> JsonObject:
        """Run an owner-described action, on exposed, allowed entities only."""
        tool.check_arguments(arguments)
        tool.check_action(self.hass)  # before its targets: a missing script has none to read
        resolution = resolve_action_call(self.hass, tool.action, {**tool.data, **arguments})
        self._decide(tool.name, arguments, resolution)
        async with asyncio.timeout(self.policy.timeout):
            return await tool.async_run(self.hass, arguments, Context())

    def _decide(self, name: str, arguments: dict[str, Any], resolution: Resolution) -> None:
        """Raise unless the policy lets this call change what it would change."""
        if resolution.unknown is not None:
            raise ToolRefusedError(
                f"Not allowed: {resolution.unknown}, so this assistant does not run it. "
                "Tell the user it cannot be done by voice."
            )
        rules = RiskRules(self.hass, self.policy.risky_entities)
        if unexposed := rules.unexposed(resolution.acts_on):
            raise ToolRefusedError(
                f"Not allowed: {', '.join(unexposed)} is not exposed to the assistant."
            )
        risky = rules.high_risk(resolution.entities)
        if not risky:
            return
        if not self.policy.allow_risky:
            raise ToolRefusedError(_refusal(rules.names(risky)))
        if not self.policy.confirm_risky:
            return
        call = (name, json.dumps(arguments, sort_keys=True, default=str), resolution.entities)
        if not self._confirmations.confirmed(call):
            self._confirmations.ask(call)
            raise ConfirmationRequiredError(rules.names(risky))

    def _context(self, device_id: str | None) -> llm.LLMContext:
        return llm.LLMContext(
            platform=DOMAIN,
            context=Context(),
            language=self.hass.config.language,
            assistant=CONVERSATION_DOMAIN,
            device_id=device_id,
        )

    def _output(
        self, call: FunctionCall, data: JsonObject, follow_up: FollowUp = FollowUp.ANSWER
    ) -> ToolOutcome:
        """Encode a result for the model, cut to MAX_OUTPUT_CHARS."""
        text = json.dumps(data, default=str, ensure_ascii=False)
        if len(text) > MAX_OUTPUT_CHARS:
            text = text[:MAX_OUTPUT_CHARS] + " …(cut)"
        return ToolOutcome(call.call_id, text, follow_up=follow_up)

    def _audit(
        self,
        call: FunctionCall,
        arguments: dict[str, Any] | None,
        outcome: str,
        started: float,
        *,
        reason: str | None = None,
    ) -> None:
        """Fire realtime_voice_tool_call for the logbook and audits."""
        if arguments is None:
            try:
                arguments = _parse_arguments(call.arguments)
            except ValueError:
                arguments = {"raw": call.arguments[:500]}
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        LOGGER.debug("Tool %s %s in %s ms", call.name, outcome, duration_ms)
        data: dict[str, Any] = {
            "tool": call.name,
            "arguments": arguments,
            "outcome": outcome,
            "duration_ms": duration_ms,
        }
        if reason is not None:
            data["reason"] = reason
        self.hass.bus.async_fire(EVENT_TOOL_CALL, data)


def _error(err: Exception) -> JsonObject:
    """Describe a failure for the model."""
    return {"error": type(err).__name__, "error_text": str(err)}


def _confirmation(err: ConfirmationRequiredError) -> JsonObject:
    """Ask the model to get the user's spoken yes before the call may run."""
    return {"confirmation_required": True, "targets": err.names, "message": str(err)}


def _confirmation_text(names: list[str]) -> str:
    """Explain, in words the model can pass on, how a high-risk call gets confirmed."""
    return (
        f"Not done yet: this acts on {', '.join(names)}, which needs the user's spoken "
        "confirmation. Ask the user whether to go ahead, naming what it changes. Only if they "
        "say yes, call the same tool again with exactly the same arguments within "
        f"{CONFIRMATION_SECONDS:g} seconds."
    )


def _refusal(names: list[str]) -> str:
    """Explain a high-risk refusal in words the model can pass on."""
    return (
        f"Not allowed: {', '.join(names)} cannot be operated by voice on this assistant. "
        "Tell the user that the owner can allow it in the Realtime Voice options."
    )


def _validated(tool: llm.Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """Validate the model's arguments with the tool's schema; any failure is a ValueError."""
    try:
        valid: dict[str, Any] = tool.parameters(_without_blank_slots(tool, arguments))
    except probatio.Invalid:
        raise
    except Exception as err:  # other integrations' validators raise anything on bad input
        raise ValueError(f"The arguments are not valid: {err!r}") from err
    return valid


def _without_blank_slots(tool: llm.Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """Drop the blank values an intent tool drops itself (models often send empty slots)."""
    while isinstance(tool, llm.NamespacedTool):
        tool = tool.tool
    if not isinstance(tool, llm.IntentTool):
        return arguments
    return {key: value for key, value in arguments.items() if not is_blank_slot_value(value)}


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


def _format_tool(tool: llm.Tool, custom_serializer: Any) -> FunctionSpec:
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
    return FunctionSpec(tool.name, (tool.description or tool.name)[:1024], schema)
