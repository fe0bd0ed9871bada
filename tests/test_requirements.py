"""The manifest's requirements install under Home Assistant's own constraints."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import homeassistant
import pytest

MANIFEST = Path(__file__).parents[1] / "custom_components/realtime_voice/manifest.json"
CONSTRAINTS = Path(homeassistant.__file__).parent / "package_constraints.txt"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def _compile(tmp_path: Path, requirements: list[str], *options: str) -> str:
    """Resolve like Home Assistant does: uv with package_constraints.txt as constraints."""
    (tmp_path / "requirements.txt").write_text("\n".join(requirements) + "\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "uv"),
            "pip",
            "compile",
            str(tmp_path / "requirements.txt"),
            "--constraint",
            str(CONSTRAINTS),
            "--python-version",
            "3.14",
            "--no-header",
            "--cache-dir",
            str(tmp_path / "cache"),
            *options,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"SSL_CERT_FILE": CA_BUNDLE, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "platform",
    [
        "aarch64-unknown-linux-musl",  # Home Assistant OS and Container on a Pi
        "x86_64-unknown-linux-musl",
        "aarch64-manylinux_2_28",  # Home Assistant Core in a venv on Raspberry Pi OS
        "x86_64-manylinux_2_28",
    ],
)
def test_echo_cancellation_has_wheels_where_home_assistant_runs(
    tmp_path: Path, platform: str
) -> None:
    """pywebrtc-audio installs from a wheel (no compiler on a Pi) wherever Home Assistant runs."""
    pinned = next(
        requirement
        for requirement in json.loads(MANIFEST.read_text())["requirements"]
        if requirement.startswith("pywebrtc-audio==")
    )
    output = _compile(
        tmp_path, [pinned], "--python-platform", platform, "--only-binary", "pywebrtc-audio"
    )
    assert pinned in output.splitlines()


def test_requirements_resolve_with_home_assistant_constraints(tmp_path: Path) -> None:
    """Resolve like Home Assistant does: uv with package_constraints.txt as constraints."""
    requirements = json.loads(MANIFEST.read_text())["requirements"]
    result_stdout = _compile(tmp_path, requirements)
    pinned = dict(line.split("==", 1) for line in result_stdout.splitlines() if "==" in line)
    constraints = dict(
        line.split("==", 1) for line in CONSTRAINTS.read_text().splitlines() if "==" in line
    )
    # The packages Home Assistant owns resolve to its pins, never to a version of our own.
    for package in ("av", "cryptography", "numpy", "cffi"):
        if package in pinned:
            assert pinned[package] == constraints[package], package
    assert pinned["aiortc"] == "1.16.0"
