"""The receive jitter buffer: each Opus packet is decoded as soon as it is next in order."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RtpPacket
import pytest

from custom_components.realtime_voice.realtime.jitter import (
    LOSS_PACKETS,
    ArrivalJitterBuffer,
    play_audio_on_arrival,
)
from tests.helpers.audio_helpers import ScriptedTrack


def _packet(sequence: int) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=sequence % 65536, timestamp=960 * sequence)
    packet._data = bytes([sequence % 256])  # what the receiver sets after depayloading
    return packet


def _released(buffer: ArrivalJitterBuffer, sequence: int) -> int | None:
    _pli, frame = buffer.add(_packet(sequence))
    return None if frame is None else frame.timestamp // 960


def test_packets_in_order_leave_at_once() -> None:
    buffer = ArrivalJitterBuffer()
    assert [_released(buffer, n) for n in range(5)] == [0, 1, 2, 3, 4]


def test_a_reordered_packet_is_waited_for() -> None:
    buffer = ArrivalJitterBuffer()
    assert _released(buffer, 0) == 0
    assert _released(buffer, 2) is None
    assert _released(buffer, 1) == 1
    assert _released(buffer, 3) == 2  # one packet stays queued after a reorder, as in aiortc


def test_a_lost_packet_is_skipped_after_loss_packets() -> None:
    buffer = ArrivalJitterBuffer()
    assert _released(buffer, 0) == 0
    released = [_released(buffer, n) for n in range(2, 2 + LOSS_PACKETS)]
    assert released[:-1] == [None] * (LOSS_PACKETS - 1)
    assert released[-1] == 2


def test_a_handler_takes_the_packets_in_order_instead() -> None:
    """With a packet handler (a conversation's speaker), packets go to it and none to aiortc."""
    taken: list[bytes] = []
    buffer = ArrivalJitterBuffer(taken.append)
    released = [_released(buffer, n) for n in (0, 2, 1, 3)]
    assert released == [None] * 4
    assert taken == [bytes([0]), bytes([1]), bytes([2])]  # 3 waits behind the reorder


def test_sequence_numbers_wrap() -> None:
    buffer = ArrivalJitterBuffer()
    assert [_released(buffer, n) for n in range(65534, 65538)] == [65534, 65535, 65536, 65537]


@pytest.mark.usefixtures("socket_enabled")
async def test_installed_on_the_audio_receiver() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTrack(ScriptedTrack())
        play_audio_on_arrival(pc)
        receiver = pc.getTransceivers()[0].receiver
        assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, ArrivalJitterBuffer)
    finally:
        await pc.close()


@pytest.mark.usefixtures("socket_enabled")
async def test_video_keeps_aiortcs_own_buffer() -> None:
    """Only audio is played on arrival; video (the Realtime API sends none) keeps aiortc's."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video")
        pc.addTrack(ScriptedTrack())
        play_audio_on_arrival(pc)
        video, audio = pc.getTransceivers()
        assert not isinstance(video.receiver._RTCRtpReceiver__jitter_buffer, ArrivalJitterBuffer)
        assert isinstance(audio.receiver._RTCRtpReceiver__jitter_buffer, ArrivalJitterBuffer)
    finally:
        await pc.close()


@pytest.mark.usefixtures("socket_enabled")
async def test_an_aiortc_without_the_buffer_keeps_working_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A later aiortc that keeps its buffer elsewhere: nothing is replaced, and the log says so.

    Stands in for that aiortc (which does not exist) by removing the attribute from a receiver.
    """
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTrack(ScriptedTrack())
        receiver = pc.getTransceivers()[0].receiver
        del receiver._RTCRtpReceiver__jitter_buffer
        play_audio_on_arrival(pc)
        assert not hasattr(receiver, "_RTCRtpReceiver__jitter_buffer")
        assert "keeping its jitter buffer" in caplog.text
    finally:
        await pc.close()
