"""The rule files' JSON Schema and reference, generated from the definitions the loader itself uses.

`rules schema` prints the schema (the shipped copy is rules/schema.json, so editors with a YAML
language server complete and check rule files as people type); `rules docs` prints the rules
reference (docs/rules-reference.md). Tests keep both shipped copies equal to what is generated.
"""

from __future__ import annotations

import argparse
import json
from typing import IO, Any

from router.decision.conditions import CONDITION_DOCS, ConditionName
from router.decision.rules import (
    MESSAGE_LANGUAGES,
    OUTCOME_OPTIONS,
    SETTINGS_KEYS,
    TARGET_APPS,
    TOP_KEYS,
    VIA_CHOICES,
)
from router.decision.types import LANDING_PAGES, Action
from router.decision.versions import RANGE_PART_PATTERN

_RANGE = f"^{RANGE_PART_PATTERN}(,{RANGE_PART_PATTERN})*$"
_ACTION_TEXT = {
    Action.APP: "302 straight into the Taobao (or Tmall) app, with a web fallback wherever the platform allows.",
    Action.WEB: "302 to the item's mobile web page (the desktop page on computers).",
    Action.LANDING: "200, the intermediate page: open-in-browser guide, copy the code or link, web link.",
    Action.BLOCK: "A 4xx page that says why.",
}
_OPTION_TEXT = {
    "via": f"how to open the app: {', '.join(VIA_CHOICES)} (auto picks per OS and client)",
    "app": f"which app opens the link: {', '.join(TARGET_APPS)} (tmall only for Tmall items)",
    "page": f"landing page variant: {', '.join(LANDING_PAGES)}",
    "status": "the 4xx status of a block (default 403)",
    "message": "what the person is told on a block: a text, or one per language ({zh-CN: …, en: …})",
}


def _one_or_many(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def _condition_schema(name: ConditionName) -> dict[str, Any]:
    doc = CONDITION_DOCS[name]
    if doc.values:
        schema = _one_or_many({"enum": [str(value) for value in doc.values]})
    elif name in (ConditionName.APP_VERSION, ConditionName.OS_VERSION):
        schema = {"type": "string", "pattern": _RANGE}
    elif name in (ConditionName.AD_SOURCE, ConditionName.ADVERTISER, ConditionName.CAMPAIGN):
        schema = _one_or_many({"type": ["string", "integer"]})
    elif name is ConditionName.MINI_PROGRAM:
        schema = {"type": "boolean"}
    elif name is ConditionName.ROLLOUT:
        schema = {"type": "number", "minimum": 0, "maximum": 100}
    else:  # window
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {"from": {"type": "string"}, "until": {"type": "string"}, "timezone": {"type": "string"}},
            "anyOf": [{"required": ["from"]}, {"required": ["until"]}],
        }
    return {**schema, "description": f"{doc.meaning} Example: {doc.example}"}


def _outcome_schema() -> dict[str, Any]:
    options = {
        "via": {"enum": list(VIA_CHOICES)},
        "app": {"enum": list(TARGET_APPS)},
        "page": {"enum": list(LANDING_PAGES)},
        "status": {"type": "integer", "minimum": 400, "maximum": 499},
        "message": {"anyOf": [
            {"type": "string"},
            {"type": "object", "minProperties": 1, "additionalProperties": False,
             "properties": {lang: {"type": "string", "minLength": 1} for lang in MESSAGE_LANGUAGES}},
        ]},
    }
    forms: list[dict[str, Any]] = [{"enum": [action.value for action in Action]}]
    for action, keys in OUTCOME_OPTIONS.items():
        properties: dict[str, Any] = {"action": {"const": action.value}}
        properties.update({key: options[key] for key in keys if key != "action"})
        forms.append({"type": "object", "required": ["action"], "additionalProperties": False,
                      "properties": properties, "description": _ACTION_TEXT[action]})
    return {"oneOf": forms}


def rules_schema() -> dict[str, Any]:
    conditions = {name.value: _condition_schema(name) for name in ConditionName}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "adlink-router rule file",
        "description": "Rules are tried in order; the first whose `when` conditions all hold decides.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            "default": {"$ref": "#/$defs/then", "description": "The action when no rule matches."},
            "settings": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"universal_link_hosts": {"type": "array", "items": {"type": "string"}}},
            },
        },
        "$defs": {
            "rule": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "when", "then"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "when": {"$ref": "#/$defs/when"},
                    "then": {"$ref": "#/$defs/then"},
                },
            },
            "when": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": conditions},
            "then": _outcome_schema(),
        },
    }


def rules_reference() -> str:
    """The policy owners' reference, in Markdown."""
    lines = [
        "# Rules reference",
        "",
        "Generated by `python -m router rules docs` from the definitions the loader uses; a test keeps it",
        "in sync. How to change a rule safely: [changing-rules.md](changing-rules.md).",
        "",
        "## A rule file",
        "",
        f"Top-level keys: {', '.join(f'`{key}`' for key in TOP_KEYS)}. Rules are tried in order (files in",
        "name order); a rule matches when all its `when` conditions hold, a list value meaning any of;",
        "the first match decides; `default` (in exactly one file) answers when none does. Settings:",
        f"{', '.join(f'`{key}`' for key in SETTINGS_KEYS)} (hosts the Taobao app claims as Universal Links).",
        "",
        "```yaml",
        "# yaml-language-server: $schema=schema.json",
        "rules:",
        "  - id: wechat-ad-unidesk-app",
        "    description: Uni Desk ads in WeChat open the Taobao app directly.",
        "    when: {app: wechat, channel: ad, ad_source: unidesk}",
        "    then: app",
        "default: landing",
        "```",
        "",
        "## Conditions",
        "",
        "| condition | meaning | values | example |",
        "| --- | --- | --- | --- |",
    ]
    for name in ConditionName:
        doc = CONDITION_DOCS[name]
        values = ", ".join(f"`{value}`" for value in doc.values) if doc.values else "see meaning"
        lines.append(f"| `{name.value}` | {doc.meaning} | {values} | `{doc.example}` |")
    lines += ["", "## Actions", "", "| action | answer | options |", "| --- | --- | --- |"]
    for action, keys in OUTCOME_OPTIONS.items():
        options = "; ".join(f"`{key}`: {_OPTION_TEXT[key]}" for key in keys if key != "action") or "—"
        lines.append(f"| `{action.value}` | {_ACTION_TEXT[action]} | {options} |")
    lines += ["", "`then: web` is short for `then: {action: web}`.", ""]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    schema = subparsers.add_parser("schema", help="print the JSON Schema of rule files (rules/schema.json)")
    schema.set_defaults(run=lambda args, out: _write(out, json.dumps(rules_schema(), indent=2) + "\n"))
    docs = subparsers.add_parser("docs", help="print the rules reference (docs/rules-reference.md)")
    docs.set_defaults(run=lambda args, out: _write(out, rules_reference()))


def _write(out: IO[str], text: str) -> int:
    out.write(text)
    return 0
