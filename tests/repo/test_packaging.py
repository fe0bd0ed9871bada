"""HACS's and hassfest's rules, checked from the repository's files.

hassfest (home-assistant/core `script/hassfest`) is not shipped in the `homeassistant` wheel, so
its rules that fire on a custom integration are re-stated here, each citing its source. Where
the installed Home Assistant has the rule's own machinery (the loader's version check, the
manifest's keys, selector validation, the brands proxy's file names), the check uses it.
Every check is a function returning the problems it finds, run on the real files and on a bad
example, so that a check that cannot fail would show.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
import json
from pathlib import Path
import re
import string
from typing import Any, get_args, get_type_hints

from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
from homeassistant import loader
from homeassistant.components.brands.const import ALLOWED_IMAGES
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, selector
from homeassistant.util import dt as dt_util, yaml as yaml_util
from PIL import Image
import probatio
import pytest

from custom_components.realtime_voice import box_flow, config_flow, options, translated_errors
from custom_components.realtime_voice.binary_sensor import BINARY_SENSORS
from custom_components.realtime_voice.budget import LimitKind
from custom_components.realtime_voice.button import BUTTONS
from custom_components.realtime_voice.const import DOMAIN
from custom_components.realtime_voice.model_issues import ModelProblem
from custom_components.realtime_voice.realtime.events import Usage
from custom_components.realtime_voice.sensor import SENSORS, TRANSCRIPT_SENSORS
from custom_components.realtime_voice.services import async_setup_services
from custom_components.realtime_voice.state import SessionState, Transcript

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "custom_components" / DOMAIN


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


MANIFEST = _json(INTEGRATION / "manifest.json")
STRINGS = _json(INTEGRATION / "strings.json")
ICONS = _json(INTEGRATION / "icons.json")
SERVICES = yaml_util.load_yaml(INTEGRATION / "services.yaml")
MIN_HOME_ASSISTANT = AwesomeVersion("2026.10.0")


# --- manifest.json ----------------------------------------------------------------------------

# hassfest manifest.py: SUPPORTED_IOT_CLASSES.
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
# HACS (hacs/documentation publish/integration.md) and hassfest manifest.py (custom schema).
REQUIRED_MANIFEST_KEYS = {
    "domain",
    "name",
    "codeowners",
    "documentation",
    "issue_tracker",
    "iot_class",
    "version",
}
# The integration types the loader knows (loader.Manifest); hassfest's integration_type.py
# requires one of them from an integration with a config flow (core), and a custom one without
# it is taken for a hub.
INTEGRATION_TYPES = set(get_args(get_type_hints(loader.Manifest)["integration_type"]))
# The keys the loader reads (loader.Manifest), without the two it sets itself.
MANIFEST_KEYS = set(loader.Manifest.__annotations__) - {"is_built_in", "overwrites_built_in"}
# The version schemes the loader accepts for a custom integration (loader.py, as hassfest).
VERSION_STRATEGIES = [
    AwesomeVersionStrategy.CALVER,
    AwesomeVersionStrategy.SEMVER,
    AwesomeVersionStrategy.SIMPLEVER,
    AwesomeVersionStrategy.BUILDVER,
    AwesomeVersionStrategy.PEP440,
]


def manifest_problems(manifest: Mapping[str, Any], directory: str) -> list[str]:
    """Return what HACS or hassfest would refuse in a custom integration's manifest."""
    problems = []
    keys = list(manifest)
    # HACS action "manifest" and hassfest manifest.py: "domain, name, then alphabetical order".
    if keys[:2] != ["domain", "name"] or keys[2:] != sorted(keys[2:]):
        problems.append(f"keys not ordered domain, name, then alphabetically: {keys}")
    problems += [f"missing {key}" for key in sorted(REQUIRED_MANIFEST_KEYS - set(keys))]
    problems += [f"unknown key {key}" for key in sorted(set(keys) - MANIFEST_KEYS)]
    if manifest.get("domain") != directory:
        problems.append(f"domain {manifest.get('domain')} is not the directory name {directory}")
    for key in ("documentation", "issue_tracker"):
        if not str(manifest.get(key, "")).startswith("https://"):
            problems.append(f"{key} is not an https URL")
    if not manifest.get("codeowners") or any(
        not owner.startswith("@") for owner in manifest.get("codeowners", [])
    ):
        problems.append("codeowners must be a non-empty list of @names")
    try:
        AwesomeVersion(str(manifest.get("version")), ensure_strategy=VERSION_STRATEGIES)
    except Exception:  # noqa: BLE001 - any failure to parse is the finding
        problems.append(f"version {manifest.get('version')!r} is not a valid version")
    if manifest.get("integration_type") not in INTEGRATION_TYPES:
        problems.append(
            f"integration_type {manifest.get('integration_type')!r} is not a known type"
        )
    if manifest.get("iot_class") not in IOT_CLASSES:
        problems.append(f"iot_class {manifest.get('iot_class')!r} is not one of {IOT_CLASSES}")
    if manifest.get("config_flow") is not True:
        problems.append("config_flow must be true (the integration is set up from the UI)")
    problems += [
        f"requirement {requirement} is not pinned with =="
        for requirement in manifest.get("requirements", [])
        if not re.fullmatch(r"[A-Za-z0-9._\[\],-]+==[A-Za-z0-9.+!-]+", requirement)
    ]
    return problems


def test_manifest_follows_the_rules() -> None:
    assert manifest_problems(MANIFEST, INTEGRATION.name) == []
    assert (INTEGRATION / "config_flow.py").is_file()  # hassfest config_flow.py
    for dependency in MANIFEST.get("dependencies", []):  # hassfest dependencies.py
        assert (Path(loader.__file__).parent / "components" / dependency).is_dir(), dependency


def test_manifest_check_catches_bad_manifests() -> None:
    bad = {
        "name": "x",
        "domain": "other",
        "codeowners": ["someone"],
        "documentation": "http://example.com",
        "iot_class": "cloud",
        "requirements": ["aiortc>=1.16"],
        "config_flow": False,
        "version": "not a version",
        "color": "blue",
    }
    assert manifest_problems(bad, DOMAIN) == [
        f"keys not ordered domain, name, then alphabetically: {list(bad)}",
        "missing issue_tracker",
        "unknown key color",
        f"domain other is not the directory name {DOMAIN}",
        "documentation is not an https URL",
        "issue_tracker is not an https URL",
        "codeowners must be a non-empty list of @names",
        "version 'not a version' is not a valid version",
        "integration_type None is not a known type",
        f"iot_class 'cloud' is not one of {IOT_CLASSES}",
        "config_flow must be true (the integration is set up from the UI)",
        "requirement aiortc>=1.16 is not pinned with ==",
    ]
    reordered = {
        "domain": DOMAIN,
        "name": "x",
        **{k: v for k, v in MANIFEST.items() if k not in ("domain", "name")},
    }
    assert manifest_problems(reordered, DOMAIN) == []
    swapped = dict(reversed(list(reordered.items())))
    assert manifest_problems(swapped, DOMAIN)[0].startswith("keys not ordered")


async def test_home_assistant_loads_it_as_a_versioned_custom_integration(
    hass: HomeAssistant,
) -> None:
    """The loader refuses a custom integration without a valid version; this one it takes."""
    integration = await loader.async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert integration.version == AwesomeVersion(MANIFEST["version"])
    assert integration.config_flow
    assert integration.iot_class == MANIFEST["iot_class"]


# --- hacs.json and the repository's layout ------------------------------------------------------

# hacs/documentation source/docs/publish/start.md: the documented keys; others fail validation.
HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "persistent_directory",
    "render_readme",
    "hacs",
}


def hacs_problems(hacs: Mapping[str, Any]) -> list[str]:
    """Return what HACS would refuse in hacs.json, or what breaks our minimum version."""
    problems = [f"undocumented key {key}" for key in sorted(set(hacs) - HACS_KEYS)]
    if not hacs.get("name"):
        problems.append("name is required")
    if hacs.get("zip_release") and not hacs.get("filename"):
        problems.append("zip_release needs filename")
    try:
        minimum = AwesomeVersion(hacs["homeassistant"].removesuffix("b0"))
        if minimum < MIN_HOME_ASSISTANT:
            problems.append(f"homeassistant {minimum} is below {MIN_HOME_ASSISTANT}")
    except KeyError:
        problems.append(f"homeassistant is missing (this needs {MIN_HOME_ASSISTANT})")
    return problems


def test_hacs_json_follows_the_rules() -> None:
    assert hacs_problems(_json(REPO / "hacs.json")) == []


def test_hacs_check_catches_bad_files() -> None:
    bad = {"domains": ["realtime_voice"], "zip_release": True, "homeassistant": "2024.1.0"}
    assert hacs_problems(bad) == [
        "undocumented key domains",
        "name is required",
        "zip_release needs filename",
        "homeassistant 2024.1.0 is below 2026.10.0",
    ]
    assert hacs_problems({"name": "x"}) == ["homeassistant is missing (this needs 2026.10.0)"]


def test_repository_holds_exactly_one_integration() -> None:
    """HACS publish/integration.md: one integration under custom_components/, with a README."""
    integrations = [
        path.name
        for path in (REPO / "custom_components").iterdir()
        if path.is_dir() and path.name != "__pycache__"
    ]
    assert integrations == [DOMAIN]
    assert (REPO / "README.md").is_file()


# --- __init__.py: CONFIG_SCHEMA ----------------------------------------------------------------


def config_schema_problems(source: str) -> list[str]:
    """Hassfest config_schema.py: a module with async_setup must define CONFIG_SCHEMA."""
    tree = ast.parse(source)
    functions = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    if {"async_setup", "setup"} & functions and "CONFIG_SCHEMA" not in assigned:
        return ["async_setup without CONFIG_SCHEMA: use cv.config_entry_only_config_schema"]
    return []


def test_init_declares_config_entry_only_schema() -> None:
    source = (INTEGRATION / "__init__.py").read_text(encoding="utf-8")
    assert config_schema_problems(source) == []
    bad = "async def async_setup(hass, config):\n    return True\n"
    assert config_schema_problems(bad) == [
        "async_setup without CONFIG_SCHEMA: use cv.config_entry_only_config_schema"
    ]


def test_yaml_configuration_is_refused_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The schema is the config-entry-only one: YAML under the domain is not read."""
    from custom_components.realtime_voice import CONFIG_SCHEMA  # noqa: PLC0415

    CONFIG_SCHEMA({DOMAIN: {"api_key": "sk-x"}})
    assert "does not support YAML setup" in caplog.text


# --- runtime-data: the typed entry everywhere -------------------------------------------------


# The functions through which Home Assistant hands an integration its entry.
ENTRY_HOOKS = {
    "async_setup_entry",
    "async_unload_entry",
    "async_remove_entry",
    "async_migrate_entry",
    "async_get_options_flow",
    "async_get_config_entry_diagnostics",
    "async_remove_config_entry_device",
}


def untyped_entry_parameters(source: str) -> list[str]:
    """Return the hooks that take a bare ConfigEntry (hassfest's runtime-data check).

    With strict-typing, the hooks through which Home Assistant hands over the entry annotate it
    RealtimeVoiceConfigEntry, so that runtime_data is typed.
    """
    return [
        f"{node.name}({argument.arg})"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in ENTRY_HOOKS
        for argument in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
        if argument.annotation is not None
        and ast.unparse(argument.annotation).split(".")[-1] == "ConfigEntry"
    ]


def test_every_entry_parameter_is_typed() -> None:
    found = {
        module.name: untyped
        for module in sorted(INTEGRATION.rglob("*.py"))
        if (untyped := untyped_entry_parameters(module.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_untyped_entry_check_catches_a_bare_config_entry() -> None:
    source = (
        "def async_get_options_flow(config_entry: ConfigEntry) -> Flow: ...\n"
        "async def async_setup_entry(hass, entry: config_entries.ConfigEntry) -> bool: ...\n"
        "async def async_unload_entry(hass, entry: RealtimeVoiceConfigEntry) -> bool: ...\n"
        "def helper(entry: ConfigEntry) -> None: ...\n"
    )
    assert untyped_entry_parameters(source) == [
        "async_get_options_flow(config_entry)",
        "async_setup_entry(entry)",
    ]


# --- strings.json, translations/en.json ----------------------------------------------------------

# hassfest translations.py: RE_TRANSLATION_KEY and the value rules of validate_translation_value.
TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5):\/\/|www\.)"
    r"[a-z0-9]+([\-\.]{1}[a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(\/.*)?)",
    re.IGNORECASE,
)


def _key(value: Any) -> str:
    if not isinstance(value, str) or not TRANSLATION_KEY.match(value):
        raise probatio.Invalid(f"invalid translation key {value!r} (hassfest: [a-z0-9-_]+)")
    return value


def _text(*, placeholders: bool = True) -> Any:
    def validate(value: Any) -> str:
        value = cv.string_with_no_html(value)
        if value != value.strip():
            raise probatio.Invalid("leading or trailing spaces")
        if URL.search(value):
            raise probatio.Invalid("a URL: use a description placeholder")
        if re.search(r"'{\w+}'", value):
            raise probatio.Invalid("a placeholder in single quotes")
        for _, field, _, _ in string.Formatter().parse(value):
            if field is not None and (not placeholders or not field.isidentifier()):
                raise probatio.Invalid(f"placeholder {{{field}}} not allowed here")
        return value

    return validate


_STEP = {
    probatio.Optional("title"): _text(),
    probatio.Optional("description"): _text(),
    probatio.Optional("data"): {str: _text()},
    probatio.Optional("data_description"): {str: _text()},
    probatio.Optional("submit"): _text(),
    probatio.Optional("sections"): {
        str: {
            probatio.Optional("name"): _text(),
            probatio.Optional("description"): _text(),
            probatio.Optional("data"): {str: _text()},
            probatio.Optional("data_description"): {str: _text()},
        }
    },
}


def _described_data_only(flow: dict[str, Any]) -> dict[str, Any]:
    """Hassfest: every data_description key must also be in data."""
    for step_id, step in flow["step"].items():
        if extra := set(step.get("data_description", {})) - set(step.get("data", {})):
            raise probatio.Invalid(f"step {step_id}: data_description without data: {extra}")
    return flow


_FLOW = probatio.All(
    probatio.Schema(
        {
            probatio.Required("step"): {str: _STEP},
            probatio.Optional("error"): {str: _text()},
            probatio.Optional("abort"): {str: _text()},
        }
    ),
    _described_data_only,
)


# hassfest: a subentry flow also names its kind and the button that adds one.
_SUBENTRY_FLOW = probatio.All(
    probatio.Schema(
        {
            probatio.Required("entry_type"): _text(),
            probatio.Required("initiate_flow"): {
                probatio.Required("user"): _text(),
                probatio.Optional("reconfigure"): _text(),
            },
            probatio.Required("step"): {str: _STEP},
            probatio.Optional("error"): {str: _text()},
            probatio.Optional("abort"): {str: _text()},
        }
    ),
    _described_data_only,
)


def _described_or_fixable(issue: dict[str, Any]) -> dict[str, Any]:
    """Hassfest: an issue has a description, or a fix flow that describes it."""
    if "description" not in issue and "fix_flow" not in issue:
        raise probatio.Invalid("an issue needs a description or a fix_flow")
    return issue


_FIELDS = cv.schema_with_slug_keys(
    {probatio.Required("name"): str, probatio.Required("description"): _text()},
    slug_validator=_key,
)
_STATES = cv.schema_with_slug_keys(_text(placeholders=False), slug_validator=_key)
# hassfest translations.py gen_strings_schema, for the sections this integration uses.
STRINGS_SCHEMA = probatio.Schema(
    {
        probatio.Optional("config"): _FLOW,
        probatio.Optional("config_subentries"): cv.schema_with_slug_keys(
            _SUBENTRY_FLOW, slug_validator=_key
        ),
        probatio.Optional("options"): _FLOW,
        probatio.Optional("selector"): cv.schema_with_slug_keys(
            {probatio.Optional("options"): cv.schema_with_slug_keys(_text(), slug_validator=_key)}
        ),
        probatio.Optional("entity"): cv.schema_with_slug_keys(
            cv.schema_with_slug_keys(
                {
                    probatio.Optional("name"): _text(),
                    probatio.Optional("state"): _STATES,
                    probatio.Optional("state_attributes"): cv.schema_with_slug_keys(
                        {
                            probatio.Optional("name"): _text(placeholders=False),
                            probatio.Optional("state"): _STATES,
                        },
                        slug_validator=_key,
                    ),
                },
                slug_validator=_key,
            )
        ),
        probatio.Optional("exceptions"): cv.schema_with_slug_keys(
            {probatio.Optional("message"): _text()}
        ),
        probatio.Optional("issues"): {
            str: probatio.All(
                {
                    probatio.Required("title"): _text(),
                    probatio.Exclusive("description", "fixable"): _text(),
                    probatio.Exclusive("fix_flow", "fixable"): _FLOW,
                },
                _described_or_fixable,
            )
        },
        probatio.Optional("services"): cv.schema_with_slug_keys(
            {
                probatio.Required("name"): _text(),
                probatio.Required("description"): _text(),
                probatio.Optional("fields"): _FIELDS,
            },
            slug_validator=_key,
        ),
    }
)


def strings_problems(strings: Any) -> list[str]:
    """Return hassfest's structural complaints about a strings file."""
    try:
        STRINGS_SCHEMA(strings)
    except probatio.Invalid as err:
        return [str(err)]
    return []


def test_strings_follow_hassfest_structure() -> None:
    assert strings_problems(STRINGS) == []


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        ({"selector": {"model": {"options": {"gpt-4.1": "x"}}}}, "invalid translation key"),
        ({"entity": {"sensor": {"State": {"name": "x"}}}}, "invalid translation key"),
        ({"exceptions": {"x": {"message": "See https://example.com"}}}, "a URL"),
        ({"services": {"x": {"name": "X"}}}, "required key not provided"),
        ({"config": {"step": {"user": {"data_description": {"a": "b"}}}}}, "without data"),
        ({"entity": {"sensor": {"x": {"state": {"on": "{n} on"}}}}}, "placeholder"),
        ({"issues": {"x": {"title": " x", "description": "y"}}}, "leading or trailing"),
    ],
)
def test_strings_check_catches_bad_strings(bad: dict[str, Any], complaint: str) -> None:
    [problem] = strings_problems(bad)
    assert complaint in problem


def test_english_translation_is_strings_json() -> None:
    """Home Assistant reads translations/en.json for a custom integration, never strings.json."""
    assert _json(INTEGRATION / "translations" / "en.json") == STRINGS


# --- Actions: services.yaml, strings, icons, registration ----------------------------------------


def services_problems(
    services: Mapping[str, Any], strings: Mapping[str, Any], icons: Mapping[str, Any]
) -> list[str]:
    """Hassfest services.py: every action and field described, with a valid selector."""
    problems = []
    described = strings.get("services", {})
    for name, spec in services.items():
        text = described.get(name, {})
        if not text.get("name") or not text.get("description"):
            problems.append(f"{name} has no name or description in strings")
        if name not in icons.get("services", {}):
            problems.append(f"{name} has no icon in icons.json")
        for field, field_spec in (spec or {}).get("fields", {}).items():
            field_text = text.get("fields", {}).get(field, {})
            if not field_text.get("name") or not field_text.get("description"):
                problems.append(f"{name}.{field} has no name or description in strings")
            try:
                selector.validate_selector(field_spec["selector"])
            except (KeyError, probatio.Invalid) as err:
                problems.append(f"{name}.{field} has no valid selector: {err}")
    problems += [
        f"{name} in strings but not in services.yaml" for name in described.keys() - services.keys()
    ]
    return problems


def test_actions_are_described() -> None:
    assert services_problems(SERVICES, STRINGS, ICONS) == []


def test_actions_check_catches_undescribed_actions() -> None:
    services = {"speak": {"fields": {"text": {"selector": {"txt": None}}}}}
    strings = {"services": {"speak": {"name": "Speak", "fields": {}}, "old": {}}}
    assert services_problems(services, strings, {}) == [
        "speak has no name or description in strings",
        "speak has no icon in icons.json",
        "speak.text has no name or description in strings",
        "speak.text has no valid selector: Unknown selector type txt found",
        "old in strings but not in services.yaml",
    ]


async def test_registered_actions_are_the_described_ones(hass: HomeAssistant) -> None:
    async_setup_services(hass)
    assert set(hass.services.async_services_for_domain(DOMAIN)) == set(SERVICES)


# --- Entities: translation keys and icons --------------------------------------------------------

DESCRIPTIONS = {
    "binary_sensor": BINARY_SENSORS,
    "sensor": (*SENSORS, *TRANSCRIPT_SENSORS),
    "button": BUTTONS,
}


# A box after a conversation: every attribute of every entity has a value.
BUSY_STATE = SessionState(
    user_transcript=Transcript("Hello", dt_util.utcnow()),
    assistant_transcript=Transcript("Hi", dt_util.utcnow()),
    session_usage=Usage(1, 2, 3, 4, 5, 6),
    last_error="lost",
)


def _attributes(description: Any) -> set[str]:
    """Return the names of the attributes an entity of this description shows."""
    attributes_fn = getattr(description, "attributes_fn", None)
    return set(attributes_fn(BUSY_STATE)) if attributes_fn else set()


def entity_problems(
    descriptions: Mapping[str, Iterable[Any]],
    strings: Mapping[str, Any],
    icons: Mapping[str, Any],
) -> list[str]:
    """Entity names and states translated, each with an icon (entity- and icon-translations)."""
    problems = []
    for platform, platform_descriptions in descriptions.items():
        texts = strings.get("entity", {}).get(platform, {})
        platform_icons = icons.get("entity", {}).get(platform, {})
        keys = {description.translation_key for description in platform_descriptions}
        for description in platform_descriptions:
            key = description.translation_key
            if not texts.get(key, {}).get("name"):
                problems.append(f"{platform}.{key} has no name in strings")
            if not platform_icons.get(key, {}).get("default"):
                problems.append(f"{platform}.{key} has no default icon")
            named = texts.get(key, {}).get("state_attributes", {})
            problems += [
                f"{platform}.{key} attribute {attribute} has no name"
                for attribute in sorted(_attributes(description))
                if not named.get(attribute, {}).get("name")
            ]
            for option in getattr(description, "options", None) or []:
                if option not in texts.get(key, {}).get("state", {}):
                    problems.append(f"{platform}.{key} state {option} has no name")
                if option not in platform_icons.get(key, {}).get("state", {}):
                    problems.append(f"{platform}.{key} state {option} has no icon")
        problems += [f"{platform}.{key} in strings is not used" for key in texts.keys() - keys]
    return problems


def test_entities_are_translated_with_icons() -> None:
    assert entity_problems(DESCRIPTIONS, STRINGS, ICONS) == []
    icons = [
        icon
        for platform in ICONS["entity"].values()
        for entry in platform.values()
        for icon in [entry["default"], *entry.get("state", {}).values()]
    ]
    assert all(icon.startswith("mdi:") for icon in icons)  # hassfest icons.py: icon_value_validator


def test_entity_check_catches_missing_translations() -> None:
    strings = {"entity": {"sensor": {"state": {"name": "State", "state": {"idle": "Idle"}}}}}
    icons = {"entity": {"sensor": {"state": {"default": "mdi:robot"}}}}
    problems = entity_problems({"sensor": SENSORS[:1]}, strings, icons)
    assert "sensor.state state listening has no name" in problems
    assert "sensor.state state idle has no icon" in problems
    assert "sensor.state attribute last_error has no name" in problems
    assert "binary_sensor" not in " ".join(problems)
    assert entity_problems({"button": BUTTONS}, {}, {})[:2] == [
        "button.start_conversation has no name in strings",
        "button.start_conversation has no default icon",
    ]


# --- Exceptions and repair issues ----------------------------------------------------------------


def raised_translation_keys(source: str) -> tuple[set[str], set[str]]:
    """Return the exception translation keys a module raises, and the names it passes instead.

    A key is found where an exception (a call to a class named ...Error, ...Failed or
    ...NotReady) gets translation_key= a string, a conditional of strings, or a name assigned
    such a value in the module. Other names are returned for a test to cover.
    """
    tree = ast.parse(source)
    assigned: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and (found := _strings_in(node.value)):
                assigned.setdefault(target.id, set()).update(found)
    keys: set[str] = set()
    unresolved: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not _is_exception(node.func):
            continue
        for keyword in node.keywords:
            if keyword.arg != "translation_key":
                continue
            if found := _strings_in(keyword.value):
                keys |= found
            elif isinstance(keyword.value, ast.Name) and keyword.value.id in assigned:
                keys |= assigned[keyword.value.id]
            else:
                unresolved.add(ast.unparse(keyword.value))
    return keys, unresolved


def _strings_in(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings_in(node.body) | _strings_in(node.orelse)
    return set()


def _is_exception(func: ast.expr) -> bool:
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name.endswith(("Error", "Failed", "NotReady"))


def test_raised_exceptions_are_translated() -> None:
    exceptions = STRINGS["exceptions"]
    unresolved_by_module = {}
    for module in sorted(INTEGRATION.rglob("*.py")):
        keys, unresolved = raised_translation_keys(module.read_text(encoding="utf-8"))
        assert keys <= exceptions.keys(), f"{module.name}: {keys - exceptions.keys()}"
        if unresolved:
            unresolved_by_module[module.name] = unresolved
    # The one computed key is the translation table's, checked in the next test.
    assert unresolved_by_module == {"translated_errors.py": {"key"}}


def test_translation_key_scan_catches_a_missing_key() -> None:
    source = (
        "def f(ok):\n"
        "    key = 'first' if ok else 'second'\n"
        "    raise ServiceValidationError(translation_domain=D, translation_key=key)\n"
        "def g():\n"
        "    raise HomeAssistantError(translation_key='third')\n"
        "def h(k):\n"
        "    raise ConfigEntryNotReady(translation_key=k)\n"
    )
    assert raised_translation_keys(source) == ({"first", "second", "third"}, {"k"})


def test_translated_errors_and_issues_exist(hass: HomeAssistant) -> None:
    for _kind, key, issue in translated_errors._TRANSLATIONS:
        assert key in STRINGS["exceptions"], key
        assert issue is None or issue in STRINGS["issues"], issue
    fallback = translated_errors.translate_error(RuntimeError("boom"))
    assert fallback.translation_key in STRINGS["exceptions"]
    raised_issues = {
        value for name, value in vars(translated_errors).items() if name.startswith("ISSUE_")
    }
    budget_keys = {f"budget_{kind}" for kind in LimitKind}  # translated_errors.budget_error
    assert budget_keys <= STRINGS["exceptions"].keys()
    model_issues = {str(problem) for problem in ModelProblem}
    assert raised_issues | budget_keys | model_issues == set(STRINGS["issues"])
    for problem in model_issues:  # fixable: SwitchModelFlow's step and abort
        assert set(STRINGS["issues"][problem]["fix_flow"]["step"]) == {"confirm"}
        assert set(STRINGS["issues"][problem]["fix_flow"]["abort"]) == {"box_removed"}


# --- Config flow: steps, errors, aborts, selectors ---------------------------------------------


def flow_translation_keys(source: str) -> dict[str, set[str]]:
    """Return the steps, errors and aborts a flow module can show, by strings section.

    A ConfigSubentryFlow's are under "box" (config_subentries.box), the rest under "config".
    Form errors outside any class are the config flow's (its key check).
    """
    tree = ast.parse(source)
    used: dict[str, set[str]] = {
        f"{flow}.{part}": set() for flow in ("config", "box") for part in ("step", "error", "abort")
    }
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    in_classes = {id(node) for cls in classes for node in ast.walk(cls)}
    for node in ast.walk(tree):
        if id(node) not in in_classes:
            used["config.error"] |= _base_errors(node)
    for cls in classes:
        bases = {ast.unparse(base) for base in cls.bases}
        flow = "box" if any("SubentryFlow" in base for base in bases) else "config"
        methods = {node.name for node in cls.body if isinstance(node, ast.AsyncFunctionDef)}
        for node in ast.walk(cls):
            used[f"{flow}.error"] |= _base_errors(node)
            if isinstance(node, ast.keyword) and node.arg == "step_id":
                used[f"{flow}.step"] |= _strings_in(node.value)
            if isinstance(node, ast.keyword) and node.arg == "reason":
                used[f"{flow}.abort"] |= _strings_in(node.value)
            if isinstance(node, ast.Attribute):
                used[f"{flow}.abort"] |= _implied_aborts(node.attr, methods)
    return used


def _base_errors(node: ast.AST) -> set[str]:
    """Return the form errors a dict literal or an errors["base"] assignment names."""
    found: set[str] = set()
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None and _strings_in(key) == {"base"}:
                found |= _strings_in(value)
    if isinstance(node, ast.Assign) and any(
        isinstance(target, ast.Tuple | ast.Subscript) and "errors['base']" in ast.unparse(target)
        for target in node.targets
    ):
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        found |= _strings_in(values[0])  # errors["base"], problem = "key", message
    return found


def _implied_aborts(method: str, flow_methods: set[str]) -> set[str]:
    """Return the abort reasons ConfigFlow's helpers use unless given another."""
    if method in {"_abort_if_unique_id_configured", "_async_abort_entries_match"}:
        return {"already_configured"}
    if method == "async_update_reload_and_abort":
        return {
            reason
            for step, reason in (
                ("async_step_reauth", "reauth_successful"),
                ("async_step_reconfigure", "reconfigure_successful"),
            )
            if step in flow_methods
        }
    return set()


def test_config_flow_steps_errors_and_aborts_exist() -> None:
    used = {section: set[str]() for section in flow_translation_keys("")}
    for module in (config_flow, box_flow):
        for section, keys in flow_translation_keys(
            Path(module.__file__ or "").read_text(encoding="utf-8")
        ).items():
            used[section] |= keys
    assert used["config.step"] == {"user", "persona", "audio", "reauth_confirm", "reconfigure"}
    assert used["box.step"] == {"user", "reconfigure", "audio"}
    assert used["box.error"] == {"invalid_prices"}
    texts = {"config": STRINGS["config"], "box": STRINGS["config_subentries"]["box"]}
    for section, keys in used.items():
        flow, part = section.split(".")
        assert keys <= texts[flow][part].keys(), f"{section}: {keys - texts[flow][part].keys()}"
        assert keys, section


def test_config_flow_scan_catches_a_missing_step() -> None:
    source = (
        "class F(ConfigFlow):\n"
        "    async def async_step_reauth(self, data):\n"
        "        return self.async_show_form(step_id='confirm', errors={'base': 'nope'})\n"
        "    async def async_step_x(self, data):\n"
        "        return self.async_update_reload_and_abort(entry)\n"
    )
    used = flow_translation_keys(source)
    assert used["config.step"] == {"confirm"}
    assert used["config.error"] == {"nope"}
    assert used["config.abort"] == {"reauth_successful"}
    assert not used["config.step"] <= STRINGS["config"]["step"].keys()


def test_select_selectors_with_translation_keys_are_translated(hass: HomeAssistant) -> None:
    """A select's translation_key points at strings.selector, with a label for each option.

    Checked on the persona step and on every section of the options form.
    """
    context = options.FormContext(hass)
    schemas = [
        box_flow.persona_schema(hass, ()),
        *(part.schema for part in options.form_schema(context).schema.values()),
    ]
    selects = [
        validator
        for schema in schemas
        for validator in schema.schema.values()
        if isinstance(validator, selector.SelectSelector)
    ]
    assert selects
    for select in selects:
        key = select.config.get("translation_key")
        if key is None:
            continue
        labels = STRINGS["selector"].get(key, {}).get("options", {})
        # An option that is no valid translation key (a dotted model id) shows as itself.
        offered = {option for option in select.config["options"] if TRANSLATION_KEY.match(option)}
        assert offered <= labels.keys(), f"{key}: {offered - labels.keys()}"


# --- Brand images -------------------------------------------------------------------------------


def brand_problems(brand: Path) -> list[str]:
    """Return what is wrong in brand/, which the brands proxy (HA 2026.3+) and hacs/action read."""
    problems = [
        f"{path.name} is not a brand image name"
        for path in brand.iterdir()
        if path.name not in ALLOWED_IMAGES
    ]
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        path = brand / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        with Image.open(path) as image:
            if image.format != "PNG" or image.size != (size, size):
                problems.append(f"{name} is {image.format} {image.size}, not PNG {size}x{size}")
            elif image.mode != "RGBA" or image.getpixel((0, size - 1))[3] != 0:
                problems.append(f"{name} has no transparent background")
    return problems


def test_brand_icons_are_shipped() -> None:
    assert brand_problems(INTEGRATION / "brand") == []


def test_brand_check_catches_wrong_images(tmp_path: Path) -> None:
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save(tmp_path / "icon.png")
    Image.new("RGB", (512, 512)).save(tmp_path / "icon@2x.png")
    Image.new("RGBA", (300, 300)).save(tmp_path / "logo.jpg", format="PNG")
    assert brand_problems(tmp_path) == [
        "logo.jpg is not a brand image name",
        "icon@2x.png has no transparent background",
    ]
    (tmp_path / "icon.png").unlink()
    Image.new("RGBA", (200, 200)).save(tmp_path / "icon.png")
    assert "icon.png is PNG (200, 200), not PNG 256x256" in brand_problems(tmp_path)


# --- CI: the workflows reviewers expect, and the changelog ---------------------------------------

WORKFLOWS = REPO / ".github" / "workflows"


def _steps_using(workflow: Mapping[str, Any], action: str) -> list[tuple[str, dict[str, Any]]]:
    """Return (job name, step) of every step that uses the action (any version)."""
    return [
        (name, step)
        for name, job in workflow.get("jobs", {}).items()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).split("@")[0] == action
    ]


def workflow_problems(workflows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return what is missing for hassfest, the HACS validation and the tests to run on pushes.

    From the actions' own documentation: home-assistant/actions/hassfest runs hassfest on the
    checked-out workspace (it mounts it); hacs/action needs `category: integration`; both belong
    to every push and pull request (hacs.xyz docs/publish/action, developers.home-assistant.io
    blog 2020-04-16 hassfest).
    """
    problems = [
        f"no workflow uses {action}"
        for action in ("home-assistant/actions/hassfest", "hacs/action", "actions/checkout")
        if not any(_steps_using(workflow, action) for workflow in workflows.values())
    ]
    for file, workflow in workflows.items():
        # YAML 1.1 reads the key `on` as true.
        triggers = workflow.get("on", workflow.get(True)) or {}
        if not {"push", "pull_request"} <= set(triggers):
            problems.append(f"{file} does not run on push and pull_request")
        for job, step in _steps_using(workflow, "hacs/action"):
            if (step.get("with") or {}).get("category") != "integration":
                problems.append(f"{file}: {job} does not validate category integration")
        for name, job in workflow.get("jobs", {}).items():
            uses = [str(step.get("uses", "")).split("@")[0] for step in job.get("steps", [])]
            if "actions/checkout" not in uses[:1] and any(uses):
                problems.append(f"{file}: {name} does not check the repository out first")
    runs = [
        step.get("run", "") for workflow in workflows.values()
        for job in workflow.get("jobs", {}).values() for step in job.get("steps", [])
    ]  # fmt: skip
    if not any(".ci/run" in run for run in runs):
        problems.append("no workflow runs the test suite (.ci/run)")
    return problems


def test_ci_runs_hassfest_hacs_and_the_tests() -> None:
    workflows = {path.name: yaml_util.load_yaml(path) for path in sorted(WORKFLOWS.glob("*.y*ml"))}
    assert workflows
    assert workflow_problems(workflows) == []
    minutes = [
        job.get("timeout-minutes", 360)
        for workflow in workflows.values()
        for job in workflow["jobs"].values()
    ]
    assert max(minutes) <= 90


def test_ci_check_catches_missing_validation() -> None:
    only_hacs = {
        "on": {"push": None},
        "jobs": {"hacs": {"steps": [{"uses": "hacs/action@main", "with": {"category": "plugin"}}]}},
    }
    assert workflow_problems({"hacs.yaml": only_hacs}) == [
        "no workflow uses home-assistant/actions/hassfest",
        "no workflow uses actions/checkout",
        "hacs.yaml does not run on push and pull_request",
        "hacs.yaml: hacs does not validate category integration",
        "hacs.yaml: hacs does not check the repository out first",
        "no workflow runs the test suite (.ci/run)",
    ]


def test_changelog_describes_the_released_version() -> None:
    """Every version in the manifest has its section in CHANGELOG.md, the newest first.

    Changes not released yet go to an "Unreleased" section above it.
    """
    headings = re.findall(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)
    if headings[0] == "Unreleased":
        headings = headings[1:]
    assert headings[0] == MANIFEST["version"]
