"""Faults a test can switch on, on the simulator as a whole (`sim.faults`) or on one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(slots=True)
class Faults:
    """Fault switches; all off by default. Read when a call is created or the event happens."""

    http_status: tuple[int, str] | None = None
    """`POST /v1/realtime/calls` answers this status and code, e.g. (429, "insufficient_quota")."""
    hang_calls: bool = False
    """`POST /v1/realtime/calls` never answers (until the simulator stops)."""
    unreachable_answer: bool = False
    """The SDP answer has a wrong ICE ufrag/password and dead ports: ICE never connects."""
    silent_data_channel: bool = False
    """The call connects but never sends an event and ignores every client event."""
    junk_events: bool = False
    """Right after `session.created`, send malformed JSON and an event of an unknown type."""
    transcript_delta_flood: int = 0
    """When > 0, each spoken reply's transcript arrives as this many deltas, back to back."""
    max_session_seconds: float | None = None
    """After this long the session ends: `error` `session_expired`, then the peer closes."""
    drop_during_response: bool = False
    """Close the answering peer abruptly as soon as reply audio has started playing."""
    bad_answer: Literal["garbled", "no_common_codec"] | None = None
    """The SDP answer is cut off in its audio section, or offers only a codec no client has."""
    unopened_data_channel: bool = False
    """The peer connects but never acknowledges the client's data channel: it never opens."""
    refused_client_events: frozenset[str] = frozenset()
    """Client events of these types are answered with a `server_error` and not acted upon."""
    duplicate_events: bool = False
    """Every server event goes out twice, with the same event_id, like a retransmitting relay."""
    dtls_closed_on_hangup: bool = False
    """`POST …/hangup` closes the peer's DTLS at once, without an SCTP ABORT before it, and
    answers only then: the order of a peer built on pion (the Go WebRTC stack), whose client
    learns of the end from DTLS while its SCTP association still looks established."""
    silent_between_replies: bool = False
    """Send no RTP at all while no reply plays, as many WebRTC senders (pion's among them) do
    when they have nothing to say; RTCP reports and consent checks go on as from any live peer."""
