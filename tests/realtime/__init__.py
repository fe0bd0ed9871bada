"""Tests of the Realtime client library (`realtime/`), no Home Assistant."""
