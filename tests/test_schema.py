"""The JSON Schema and the rules reference: generated from the loader's definitions, shipped in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from router.decision.apps import bundled_catalogue
from router.decision.conditions import CONDITION_TYPES
from router.policy.schema import rules_reference, rules_schema

ROOT = Path(__file__).resolve().parent.parent
jsonschema = pytest.importorskip("jsonschema")


def test_shipped_schema_is_generated() -> None:
    """rules/schema.json is exactly what `rules schema` prints (regenerate it when definitions change)."""
    assert json.loads((ROOT / "rules" / "schema.json").read_text(encoding="utf-8")) == rules_schema()


def test_shipped_reference_is_generated() -> None:
    """docs/rules-reference.md is exactly what `rules docs` prints."""
    assert (ROOT / "docs" / "rules-reference.md").read_text(encoding="utf-8") == rules_reference()


def test_every_condition_is_documented() -> None:
    """Every condition type has its meaning and example, a line in the reference and a schema of its own."""
    reference, schema = rules_reference(), rules_schema()["$defs"]["when"]["properties"]
    for key, condition in CONDITION_TYPES.items():
        assert condition.meaning and condition.example.startswith(f"{key}:"), key
        assert f"| `{key}` | {condition.meaning} |" in reference
        described = f"{condition.meaning} Example: {condition.example}"
        assert schema[key] == {**condition.value_schema(bundled_catalogue()), "description": described}


def test_shipped_rules_satisfy_the_schema() -> None:
    """The shipped rule file validates against the schema its first line points editors at."""
    text = (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=schema.json\n")
    jsonschema.validate(yaml.safe_load(text), rules_schema())


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"rules": [{"id": "a", "when": {"advertizer": "1"}, "then": "web"}]}, "advertizer"),
        ({"rules": [{"id": "a", "when": {"app_version": 8.0}, "then": "web"}]}, "8.0"),
        ({"rules": [{"id": "a", "when": {"app_version": ">>8"}, "then": "web"}]}, ">>8"),
        ({"rules": [{"id": "a", "when": {"app": "wechatt"}, "then": "web"}]}, "wechatt"),
        ({"rules": [{"id": "a", "when": {"rollout": 150}, "then": "web"}]}, "150"),
        ({"rules": [{"id": "a", "when": {}, "then": "web"}]}, "{}"),
        ({"rules": [{"id": "a", "when": {"app": "qq"}, "then": {"action": "web", "via": "intent"}}]}, "via"),
        ({"default": "redirect"}, "redirect"),
    ],
)
def test_schema_flags_what_the_loader_rejects(document: dict, complaint: str) -> None:  # type: ignore[type-arg]
    """Editors see the same mistakes the loader refuses."""
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(document, rules_schema())
    assert complaint in str(caught.value)
