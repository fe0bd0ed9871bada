"""The OpenAI Realtime client over WebRTC. No Home Assistant imports."""
