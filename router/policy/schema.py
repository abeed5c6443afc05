"""The rule files' JSON Schema and reference, generated from the definitions the loader itself uses.

`rules schema` prints the schema (the shipped copy is rules/schema.json, so editors with a YAML
language server complete and check rule files as people type); `rules docs` prints the rules
reference (docs/rules-reference.md). Tests keep both shipped copies equal to what is generated.
"""

from __future__ import annotations

import argparse
import json
from typing import IO, Any

from router.decision.apps import (
    ENTRY_KEYS,
    KINDS,
    LEAVES,
    MAX_MARKER,
    MAX_NAME,
    MIN_MARKER,
    Catalogue,
    bundled_catalogue,
)
from router.decision.conditions import CONDITION_TYPES, Condition, Header
from router.decision.rules import (
    MESSAGE_LANGUAGES,
    SETTINGS_KEYS,
    TARGET_APPS,
    THEN_OPTIONS,
    TOP_KEYS,
    VIA_CHOICES,
)
from router.decision.types import LANDING_PAGES, LANGUAGES, Action

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


def _reads(condition: type[Condition]) -> str:
    """What a condition type reads of a click, for the reference: a rule that reads the time or the visitor
    is decided for every click afresh."""
    return ", ".join(sorted(f"header `{read.name}`" if isinstance(read, Header) else str(read)
                            for read in condition.reads))


def _condition_schema(condition: type[Condition], apps: Catalogue) -> dict[str, Any]:
    return {**condition.value_schema(apps), "description": f"{condition.meaning} Example: {condition.example}"}


def _app_schema() -> dict[str, Any]:
    """One entry of the app catalogue (router.decision.apps reads the same fields, with line numbers)."""
    languages = {"type": "object", "additionalProperties": False, "required": list(LANGUAGES),
                 "properties": {lang: {"type": "string", "minLength": 1, "maxLength": MAX_NAME} for lang in LANGUAGES}}
    token = {"type": "string", "minLength": MIN_MARKER, "maxLength": MAX_MARKER, "pattern": "^[ -~]+$"}
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$",
               "description": "The name rules use: when: {app: <id>}."},
        "names": {**languages, "description": "What the landing page calls the app, in each language."},
        "markers": {"type": "array", "items": token, "uniqueItems": True,
                    "description": "Literal User-Agent tokens, case-sensitive, found where a token starts; the "
                                   "number right after one is the app's version."},
        "kind": {"enum": list(KINDS), "description": "inapp: an app's web view; browser; bot."},
        "leave": {"enum": list(LEAVES), "description": "How a person gets to a browser: menu | none."},
        "menu": {**languages, "description": "The menu item that opens a browser (leave: menu)."},
        "menu_ios": {**languages, "description": "The same item on iOS, where it differs."},
        "versions": {"type": "array", "items": token, "uniqueItems": True,
                     "description": "Tokens whose number is the version, read before the markers'."},
    }
    if set(properties) != set(ENTRY_KEYS):
        raise ValueError("the app entry's schema and router.decision.apps.ENTRY_KEYS disagree")
    return {"type": "object", "additionalProperties": False,
            "required": ["id", "names", "markers", "kind", "leave"], "properties": properties}


def _then_schema() -> dict[str, Any]:
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
    for action, keys in THEN_OPTIONS.items():
        properties: dict[str, Any] = {"action": {"const": action.value}}
        properties.update({key: options[key] for key in keys if key != "action"})
        forms.append({"type": "object", "required": ["action"], "additionalProperties": False,
                      "properties": properties, "description": _ACTION_TEXT[action]})
    return {"oneOf": forms}


def rules_schema(apps: Catalogue | None = None) -> dict[str, Any]:
    """The schema of rule files whose app names are those of `apps` (the shipped catalogue when None)."""
    apps = apps or bundled_catalogue()
    conditions = {key: _condition_schema(condition, apps) for key, condition in CONDITION_TYPES.items()}
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
            "apps": {"type": "array", "items": {"$ref": "#/$defs/app"},
                     "description": "The app catalogue, in precedence order (one file holds it: apps.yaml)."},
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
            "then": _then_schema(),
            "app": _app_schema(),
        },
    }


def rules_reference(apps: Catalogue | None = None) -> str:
    """The policy owners' reference, in Markdown (the app names those of `apps`, the shipped catalogue when None)."""
    apps = apps or bundled_catalogue()
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
        "`reads` says what a condition looks at in a click. A click that meets a rule reading the `time` or",
        "the `visitor` (a rollout between 0 and 100 %) is decided afresh every time; every other answer is",
        "kept for the clicks alike in all the rules read.",
        "",
        "| condition | meaning | values | example | reads |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, condition in CONDITION_TYPES.items():
        choices = condition.choices(apps)
        values = ", ".join(f"`{value}`" for value in choices) if choices else "see meaning"
        lines.append(f"| `{key}` | {condition.meaning} | {values} | `{condition.example}` | {_reads(condition)} |")
    lines += ["", "## Actions", "", "| action | answer | options |", "| --- | --- | --- |"]
    for action, keys in THEN_OPTIONS.items():
        options = "; ".join(f"`{key}`: {_OPTION_TEXT[key]}" for key in keys if key != "action") or "—"
        lines.append(f"| `{action.value}` | {_ACTION_TEXT[action]} | {options} |")
    lines += ["", "`then: web` is short for `then: {action: web}`.", ""]
    lines += _apps_reference(apps)
    return "\n".join(lines)


def _apps_reference(apps: Catalogue) -> list[str]:
    lines = [
        "## Apps",
        "",
        "The app catalogue (`apps:`, shipped as `rules/apps.yaml`; [apps.md](apps.md) explains it), in precedence",
        "order: the first app with a marker in the user agent is the app. Apps above `bot` win over the words",
        "bots use; apps below it lose to them.",
        "",
        "| app | names | kind | leave | markers |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in apps:
        names = " / ".join(entry.names[lang] for lang in LANGUAGES)
        markers = ", ".join(f"`{marker}`" for marker in entry.markers) or "(by class, in code)"
        lines.append(f"| `{entry.id}` | {names} | {entry.kind} | {entry.leave} | {markers} |")
    return [*lines, ""]


def register(subparsers: argparse._SubParsersAction) -> None:
    schema = subparsers.add_parser("schema", help="print the JSON Schema of rule files (rules/schema.json)")
    schema.add_argument("directory", nargs="?", metavar="DIR",
                        help="a rules directory whose app catalogue names the apps (default: the shipped one); "
                             "regenerate your copy with: rules schema DIR > DIR/schema.json")
    schema.set_defaults(run=_print_schema)
    docs = subparsers.add_parser("docs", help="print the rules reference (docs/rules-reference.md)")
    docs.set_defaults(run=lambda args, out: _write(out, rules_reference()))


def _print_schema(args: argparse.Namespace, out: IO[str]) -> int:
    """The schema for the shipped catalogue, or for the one of the rules in `args.directory` (which must load:
    its problems are printed instead, and the exit status is 1)."""
    apps = None
    if args.directory is not None:
        from router.decision.rules import RuleSetError, load_rules

        try:
            apps = load_rules(args.directory).apps
        except RuleSetError as err:
            out.writelines(problem.labelled("error") + "\n" for problem in err.problems)
            return 1
    return _write(out, json.dumps(rules_schema(apps), indent=2) + "\n")


def _write(out: IO[str], text: str) -> int:
    out.write(text)
    return 0
