# PulseAudio with virtual devices, for tests, benchmarks and the development server. Sourced
# inside the environment (see in_env in scripts/lib.sh).
#   speaker    a null sink: what the integration plays; record it from speaker.monitor
#   mic_feed   a null sink: play a WAV here (paplay --device=mic_feed) ...
#   mic        ... and it is heard on this source, the default microphone
# shellcheck shell=bash

start_virtual_audio() {
  XDG_RUNTIME_DIR=$(mktemp -d /tmp/realtime-voice-pulse.XXXXXX)
  export XDG_RUNTIME_DIR
  export PULSE_SERVER="unix:$XDG_RUNTIME_DIR/pulse/native"
  # Root is fine here: a private server for this run, with no D-Bus and no hardware. No CPU
  # limit: PulseAudio's own abort()s the server once it used 70 % of a core for about 14 s, as
  # a server catching up on a starved machine can; a loaded CI run lost its devices to an abort
  # mid-run (stop_virtual_audio now prints the log of such an end).
  pulseaudio -n --daemonize=no --exit-idle-time=-1 --system=no --disallow-exit=no --no-cpu-limit \
    --log-target="file:$XDG_RUNTIME_DIR/pulseaudio.log" \
    --load="module-native-protocol-unix auth-anonymous=1 socket=$XDG_RUNTIME_DIR/pulse/native" \
    --load="module-null-sink sink_name=speaker sink_properties=device.description=Speaker" \
    --load="module-null-sink sink_name=mic_feed sink_properties=device.description=Mic_feed" \
    --load="module-remap-source source_name=mic master=mic_feed.monitor source_properties=device.description=Microphone" \
    2>/dev/null &
  VIRTUAL_AUDIO_PID=$!
  local _
  for _ in $(seq 100); do
    pactl info >/dev/null 2>&1 && break
    sleep 0.05
  done
  pactl info >/dev/null || { cat "$XDG_RUNTIME_DIR/pulseaudio.log" >&2; return 1; }
  pactl set-default-sink speaker
  pactl set-default-source mic
  export REALTIME_VOICE_VIRTUAL_AUDIO=1
}

stop_virtual_audio() {
  [ -n "${VIRTUAL_AUDIO_PID:-}" ] || return 0
  if ! kill -0 "$VIRTUAL_AUDIO_PID" 2>/dev/null; then
    # The server ended on its own: every test after that fails on its devices; say why it ended.
    echo "PulseAudio (the virtual devices) ended during the run; the end of its log:" >&2
    tail -n 40 "$XDG_RUNTIME_DIR/pulseaudio.log" >&2 || true
  fi
  kill "$VIRTUAL_AUDIO_PID" 2>/dev/null || true
  wait "$VIRTUAL_AUDIO_PID" 2>/dev/null || true
  rm -rf "$XDG_RUNTIME_DIR"
  unset VIRTUAL_AUDIO_PID
}
