"""The manifest's requirements install where Home Assistant runs, under its own constraints.

Home Assistant installs an integration's requirements with uv and its package_constraints.txt.
Home Assistant OS and Container are Alpine (musl) on aarch64 and x86_64; Home Assistant Core on
the AIY box runs on Raspberry Pi OS (glibc). A package without a wheel there is built from its
source distribution on the user's machine, which has no compiler in Home Assistant's images.
"""

from __future__ import annotations

from importlib import metadata
import json
import os
from pathlib import Path
import re
import subprocess
import sys
import textwrap

from awesomeversion import AwesomeVersion
import homeassistant
from homeassistant import const as ha_const
import pytest

REPO = Path(__file__).parents[2]
MANIFEST = REPO / "custom_components/realtime_voice/manifest.json"
CONSTRAINTS = Path(homeassistant.__file__).parent / "package_constraints.txt"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
UV = Path(sys.executable).parent / "uv"

# uv's --python-platform for each place Home Assistant runs, and the packages known to have no
# CPython 3.14 wheel there (they install from source; see the google-crc32c test below).
PLATFORMS = {
    # Home Assistant OS and Container: Alpine, musl 1.2 (uv: musllinux_1_2), Pi and PC.
    "aarch64-unknown-linux-musl": ["google-crc32c"],
    "x86_64-unknown-linux-musl": ["google-crc32c"],
    # Home Assistant Core on Raspberry Pi OS 12 (glibc 2.36): the AIY Voice Kit box.
    "aarch64-manylinux_2_36": [],
}


def _uv(arguments: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run uv with the machine's CA bundle and its own cache in home; never raise."""
    return subprocess.run(
        [str(UV), *arguments, "--cache-dir", str(home / "uv-cache")],
        capture_output=True,
        text=True,
        check=False,
        env={"SSL_CERT_FILE": CA_BUNDLE, "PATH": "/usr/bin:/bin", "HOME": str(home), **env},
        timeout=240,
    )


@pytest.fixture(scope="module")
def uv_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return one home (and download cache) for every uv run of this module."""
    return tmp_path_factory.mktemp("uv")


@pytest.fixture(scope="module")
def requirements(uv_home: Path) -> Path:
    """Write the manifest's requirements as a requirements file."""
    path = uv_home / "requirements.txt"
    path.write_text("\n".join(json.loads(MANIFEST.read_text())["requirements"]) + "\n")
    return path


def _compile(requirements: Path, home: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Resolve like Home Assistant does: uv with package_constraints.txt, for CPython 3.14."""
    return _uv(
        [
            *("pip", "compile", str(requirements), "--constraint", str(CONSTRAINTS)),
            *("--python-version", "3.14", "--no-header", "--no-annotate", *options),
        ],
        home,
    )


def _pins(output: str) -> dict[str, str]:
    return dict(line.split("==", 1) for line in output.splitlines() if "==" in line)


def test_requirements_resolve_with_home_assistant_constraints(
    requirements: Path, uv_home: Path
) -> None:
    """The packages Home Assistant owns resolve to its pins, never to a version of our own."""
    result = _compile(requirements, uv_home)
    assert result.returncode == 0, result.stderr
    pinned = _pins(result.stdout)
    constraints = _pins(CONSTRAINTS.read_text())
    for package in ("av", "cryptography", "numpy", "cffi"):
        if package in pinned:
            assert pinned[package] == constraints[package], package
    assert pinned["aiortc"] == "1.16.0"


def _requirement_lines(name: str) -> set[str]:
    lines = (REPO / name).read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize("name", ["requirements_test.txt", "requirements_ha_newest.txt"])
def test_both_environments_hold_the_manifest_requirements(name: str) -> None:
    """The harness's and the newest Home Assistant's environments run the integration as shipped."""
    assert set(json.loads(MANIFEST.read_text())["requirements"]) <= _requirement_lines(name)


def test_the_newest_release_is_newer_than_the_harness() -> None:
    """scripts/test-newest-ha would test nothing new with the harness's own release."""
    [pinned] = [
        line for line in _requirement_lines("requirements_ha_newest.txt") if "homeassistant" in line
    ]
    assert AwesomeVersion(pinned.split("==")[1]) > AwesomeVersion(ha_const.__version__)


def packages_without_wheels(requirements: Path, home: Path, platform: str) -> list[str]:
    """Return the packages of the resolution that have no wheel for platform.

    Wheels only; each package uv names as having none is then allowed as a source distribution,
    until the resolution succeeds.
    """
    from_source: list[str] = []
    for _ in range(10):
        allowed = [f"--no-binary={package}" for package in from_source]
        options = ("--python-platform", platform, "--only-binary=:all:", *allowed)
        result = _compile(requirements, home, *options)
        if result.returncode == 0:
            return from_source
        missing = re.search(r"Wheels are required for `([^`]+)`", result.stderr)
        assert missing, result.stderr
        from_source.append(missing.group(1))
    pytest.fail(f"more than 10 packages without wheels for {platform}: {from_source}")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_package_has_a_wheel_where_home_assistant_runs(
    requirements: Path, uv_home: Path, platform: str
) -> None:
    """Only the packages listed in PLATFORMS (and README.md) install from source."""
    assert packages_without_wheels(requirements, uv_home, platform) == PLATFORMS[platform]


# The check that exercises google-crc32c on its own, then a call: what aiortc's SCTP (the data
# channel) computes on every packet goes through it. Runs with the pure-Python build first on
# the path, in a child process, so nothing of this test run's imports is reused.
CRC32C_CALL = textwrap.dedent(
    """
    import sys, timeit
    import google_crc32c
    assert google_crc32c.implementation == "python", google_crc32c.__file__
    assert google_crc32c.value(b"123456789") == 0xE3069283  # the CRC-32C check value
    packet = bytes(range(256)) * 5
    seconds = min(timeit.repeat(lambda: google_crc32c.value(packet), number=100, repeat=3)) / 100
    print(f"pure-Python crc32c: {seconds * 1e6:.0f} us per {len(packet)}-byte packet")
    import pytest
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
    """
)


def test_google_crc32c_without_a_compiler_carries_a_call(uv_home: Path, tmp_path: Path) -> None:
    """google-crc32c from source with no compiler (as on musl) falls back to pure Python.

    The C extension needs a compiler and libcrc32c, which Home Assistant's images lack: the
    sdist's setup.py then builds a pure-Python package. Installed that way (the compiler here
    replaced by one that always fails), it still carries a call's data channel.
    """
    version = metadata.version("google-crc32c")
    target = tmp_path / "pure"
    installed = _uv(
        [
            *("pip", "install", "--python", sys.executable, "--target", str(target)),
            *("--no-deps", "--no-binary=google-crc32c", f"google-crc32c=={version}"),
        ],
        uv_home,
        CC="/bin/false",  # every compiler call fails, as when there is none
        CXX="/bin/false",
    )
    assert installed.returncode == 0, installed.stderr
    assert (target / "google_crc32c" / "python.py").is_file()
    assert not list((target / "google_crc32c").glob("_crc32c*.so"))  # no C extension built

    script = tmp_path / "crc32c_call.py"
    script.write_text(CRC32C_CALL)
    tests = [
        "tests/realtime/test_connection.py::test_connects_and_configures_the_session",
        "tests/realtime/test_connection.py::test_a_spoken_turn",
    ]
    result = subprocess.run(
        [sys.executable, str(script), *tests],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO)])},
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "2 passed" in result.stdout
    print(result.stdout.splitlines()[0])  # noqa: T201 - the figure README quotes
