"""Tests for Realtime Voice."""
