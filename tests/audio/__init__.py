"""Tests of the audio engine (`audio/`), on PulseAudio virtual devices."""
