"""What the box asks the model to say in its own voice: announcements and goodbyes.

A response's `instructions` replace the session's for that response only, so each asks for one
utterance and nothing else.
"""

from __future__ import annotations

from .budget import LimitReached


def say_prompt(text: str) -> str:
    """Return the instructions that make the assistant say text."""
    return f"Say this to the user, in your own voice: {text}"


def goodbye_prompt(text: str) -> str:
    """Return the instructions that make the assistant say goodbye."""
    return f"Say goodbye to the user with these words: {text}"


def limit_goodbye_prompt(reached: LimitReached) -> str:
    """Return the instructions for the short goodbye at a spending limit."""
    what = {"daily": "today's", "monthly": "this month's", "conversation": "this conversation's"}
    return (
        f"In one short sentence, tell the user that {what[reached.kind]} spending limit is "
        "reached, and say goodbye."
    )
