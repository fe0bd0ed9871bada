"""Print the PyPI requirements of Home Assistant core components and their dependencies.

The pytest harness installs Home Assistant without the packages of its components; the tests
(and a real `hass`) load some of them. scripts/setup installs what this prints under Home
Assistant's constraints, as Home Assistant itself would at run time.
Usage: python scripts/core_requirements.py COMPONENT...
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

import homeassistant.components

COMPONENTS = Path(homeassistant.components.__file__).parent


def requirements(names: list[str]) -> list[str]:
    """Return the requirements of the named components and all they depend on."""
    seen: set[str] = set()
    found: list[str] = []
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen or not (COMPONENTS / name / "manifest.json").exists():
            continue
        seen.add(name)
        manifest = json.loads((COMPONENTS / name / "manifest.json").read_text())
        found.extend(r for r in manifest.get("requirements", []) if r not in found)
        pending.extend(manifest.get("dependencies", []))
        pending.extend(manifest.get("after_dependencies", []))
    return sorted(found)


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
