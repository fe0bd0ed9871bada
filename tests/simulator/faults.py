"""Faults a test can switch on, on the simulator as a whole (`sim.faults`) or on one call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import re
from typing import Final, Literal

from aiortc import RTCIceTransport
from aiortc.rtcsctptransport import WEBRTC_DCEP, RTCSctpTransport


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


# --- How the faults below aiortc's API are done ------------------------------------------


def ignore_channel_opens(sctp: RTCSctpTransport) -> None:
    """Make the peer's SCTP transport drop channel-open requests: no channel ever opens."""
    # The fault lives below aiortc's API: DCEP is handled inside the SCTP transport.
    receive = sctp._data_channel_receive

    async def receive_all_but_opens(stream_id: int, pp_id: int, data: bytes) -> None:
        if pp_id != WEBRTC_DCEP:
            await receive(stream_id, pp_id, data)

    sctp._data_channel_receive = receive_all_but_opens


def garbled(sdp: str) -> str:
    """Cut an answer off in its audio section, as a broken proxy would."""
    return sdp[: sdp.index("m=audio") + len("m=audio")]


def no_common_codec(sdp: str) -> str:
    """Rewrite an answer so its audio offers only Speex, which no WebRTC client has."""
    sdp = re.sub(r"(m=audio \d+ \S+)( \d+)+", r"\1 96", sdp)
    sdp = re.sub(r"a=(rtpmap|fmtp|rtcp-fb):\d+ [^\r]*\r\n", "", sdp)
    return sdp.replace("a=rtcp-mux\r\n", "a=rtcp-mux\r\na=rtpmap:96 speex/48000\r\n", 1)


BAD_ANSWERS: Final[dict[str, Callable[[str], str]]] = {
    "garbled": garbled,
    "no_common_codec": no_common_codec,
}


def unreachable(sdp: str) -> str:
    """Rewrite an answer so ICE can never succeed: other credentials, dead ports."""
    sdp = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:dead", sdp)
    sdp = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:deaddeaddeaddeaddeaddead", sdp)
    return re.sub(r"(a=candidate:\S+ \d+ \S+ \d+ \S+) \d+", r"\1 9", sdp)


def go_quiet(ice: RTCIceTransport) -> None:
    """Drop every packet an ICE transport would send from now on (aioice's one way out)."""

    async def dropped(*_args: object) -> None:
        return None

    connection = ice._connection
    connection.send = dropped
    connection.sendto = dropped
