# Shared by scripts/setup, scripts/test, scripts/develop and scripts/bench: where the Python
# environment lives and how to run a command inside it. Sourced, not executed.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The system root with Python 3.14 lives outside the clone so that every clone on a machine
# (CI's fresh clone included) reuses it; RV_ROOT moves it.
RV_ROOT=${RV_ROOT:-/var/lib/realtime-voice/sid}
RV_MIN_PYTHON="3.14.2"
# Core components whose packages the tests and `hass` need (see scripts/core_requirements.py):
# conversation for the tests; for a real `hass` (scripts/develop), the frontend and config panel
# and the integrations Home Assistant always sets up (DEFAULT_INTEGRATIONS in
# homeassistant/bootstrap.py) that have requirements of their own: camera (PyTurboJPEG), tts
# (mutagen, ha-ffmpeg), assist_satellite (its pipeline's VAD and noise filter), infrared and
# radio_frequency; analytics, whose onboarding step imports hassio (aiohasupervisor: the harness
# brings it along, Home Assistant 2026.11 itself does not); and google_translate, the
# text-to-speech entry that onboarding adds (its other additions, met and radio_browser, want the
# internet: without their packages they are skipped).
# `hass --skip-pip` then starts without installing anything or failing a setup.
RV_CORE_COMPONENTS="conversation frontend config camera tts assist_satellite infrared radio_frequency analytics google_translate"
RV_APT_PACKAGES="libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox"
# For the development server and its browser test (scripts/develop, tests/browser): Chromium and a
# font for its text; the libraries and programs behind the packages above (libturbojpeg, ffmpeg);
# g++, because pymicro-vad and pyspeex-noise have no wheels for Python 3.14 on PyPI.
RV_DEV_PACKAGES="chromium fonts-dejavu-core libturbojpeg0 ffmpeg g++"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Print a host Python >= RV_MIN_PYTHON, if the machine has one.
host_python() {
  local candidate
  for candidate in python3.14 python3.15 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$RV_MIN_PYTHON'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# "host" when the machine's own Python is new enough, else "chroot" (Debian sid root).
env_kind() {
  if [ -n "${RV_FORCE_CHROOT:-}" ] || ! host_python >/dev/null; then echo chroot; else echo host; fi
}

venv_dir() {
  if [ "$(env_kind)" = host ]; then echo "$REPO/.venv"; else echo /opt/realtime-voice-venv; fi
}

# A second environment with the newest Home Assistant release (requirements_ha_newest.txt) for
# the tests that run a real `hass` (tests/browser); the harness in venv_dir pins an older one.
newest_ha_venv_dir() {
  if [ "$(env_kind)" = host ]; then echo "$REPO/.venv-ha-newest"; else echo /opt/realtime-voice-venv-ha-newest; fi
}

# Run "$@" inside the environment with the repository as working directory. In chroot mode this
# happens in private mount and PID namespaces: every mount and every process started inside
# (PulseAudio included) is gone when the command returns, whatever way it ends.
in_env() {
  if [ "$(env_kind)" = host ]; then
    (cd "$REPO" && PATH="$(venv_dir)/bin:$PATH" "$@")
  else
    unshare --mount --pid --fork --propagation private -- \
      "$REPO/scripts/lib-chroot-run" "$RV_ROOT" "$REPO" "$(venv_dir)" "$@"
  fi
}
