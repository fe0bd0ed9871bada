"""`realtime/` and `audio/` are libraries: they never import Home Assistant."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "custom_components/realtime_voice"


def _imported_modules(source: Path) -> set[str]:
    """Return every module a source file imports, relative imports resolved to their level."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add("." * node.level + (node.module or ""))
    return modules


@pytest.mark.parametrize("library", ["realtime", "audio"])
def test_library_has_no_home_assistant_imports(library: str) -> None:
    """No module of the library imports homeassistant or the integration around it."""
    sources = sorted((PACKAGE / library).rglob("*.py"))
    assert sources
    for source in sources:
        for module in _imported_modules(source):
            assert not module.startswith("homeassistant"), f"{source.name} imports {module}"
            # ".." from a library module reaches the Home Assistant glue.
            assert not module.startswith(".."), f"{source.name} imports {module}"


def _string_constants(source: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_the_wire_stays_inside_realtime() -> None:
    """Above `realtime/`, no module names an event type or builds a client event.

    The glue talks to typed verbs and reads typed events, so a second voice API can be a
    sibling package of `realtime/` without touching it.
    """
    realtime = PACKAGE / "realtime"
    wire_types = {
        value
        for source in (realtime / "events.py", realtime / "client_events.py")
        for value in _string_constants(source)
        if "." in value and " " not in value and value.islower()
    }
    assert {"response.create", "response.done", "output_audio_buffer.clear"} <= wire_types
    glue = [s for s in PACKAGE.rglob("*.py") if realtime not in s.parents]
    assert glue
    for source in glue:
        assert not wire_types & _string_constants(source), source.name
        modules = _imported_modules(source)
        assert not any(module.endswith("client_events") for module in modules), source.name


def test_audio_modules_import_each_other_without_a_cycle() -> None:
    """The backends never import the factory that loads them: the audio package is a tree.

    Every relative import counts, those inside functions and under TYPE_CHECKING too, so that a
    lazy import cannot hide a cycle.
    """
    package = PACKAGE / "audio"
    graph = {
        source.stem: {
            module.lstrip(".").split(".")[0] or "__init__"
            for module in _imported_modules(source)
            if module.startswith(".") and not module.startswith("..")
        }
        for source in package.glob("*.py")
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, set()) - {"__init__"}:
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert "factory" in graph["__init__"]
