"""Run the simulator standalone: `python -m tests.simulator --port 8765` (Ctrl-C stops it)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .server import DEFAULT_API_KEY, DEFAULT_PORT, Simulator


async def _serve(args: argparse.Namespace) -> None:
    """Start the simulator, say where it is, and run until cancelled."""
    simulator = Simulator(api_key=args.api_key, host=args.host, port=args.port, voice=args.voice)
    await simulator.start()
    banner = f"Realtime simulator at {simulator.base_url}  (API key: {simulator.api_key})"
    print(banner, flush=True)  # noqa: T201
    stopped = asyncio.Event()
    # Ctrl-C arrives as KeyboardInterrupt (asyncio.run cancels this task); SIGTERM stops too.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    try:
        await stopped.wait()
    finally:
        await simulator.stop()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m tests.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--voice", choices=["speech", "tone"], default="speech")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
