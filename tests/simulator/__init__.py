"""A local simulator of OpenAI's Realtime WebRTC endpoint, for tests and for development.

    sim = Simulator()
    await sim.start()
    sim.script(Reply("Hello there"), CallFunction("HassTurnOn", {"name": "kitchen light"}))
    ...  # point a client at sim.base_url with sim.api_key
    call = await sim.wait_for_call()
    await call.wait_for_client_event("session.update")
    await sim.stop()

Modules: `server` (HTTP and `Simulator`), `call` (one peer and session), `events` (ids, builders,
validation against the `openai` package's types), `usage_model` (what a conversation bills),
`voice` (audio out), `vad` (audio in), `script` (what the model does) and `faults` (what goes
wrong).
"""

from .call import InvalidClientEvent, SimulatedCall
from .events import InvalidServerEventError
from .faults import Faults
from .script import CallFunction, CallFunctions, Reply, Turn
from .server import Simulator

__all__ = [
    "CallFunction",
    "CallFunctions",
    "Faults",
    "InvalidClientEvent",
    "InvalidServerEventError",
    "Reply",
    "SimulatedCall",
    "Simulator",
    "Turn",
]
