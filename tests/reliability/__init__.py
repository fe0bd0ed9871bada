"""Reliability: every fault the box can meet, and the state it must come back to."""
