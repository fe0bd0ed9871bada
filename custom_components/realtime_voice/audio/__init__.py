"""Audio engine: microphone and speaker on real devices. No Home Assistant imports."""
