"""The documentation site's generated reference pages: each committed page is what `python -m router docs PAGE`
prints, and what they are generated from is the code's own list (so a setting or a metric can't be added without
its line, nor a page go stale).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from router.cli import DOC_PAGES, main
from router.serve.metrics import FAMILIES
from router.serve.setting_docs import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("page", DOC_PAGES)
def test_the_committed_page_is_what_the_command_prints(page: str) -> None:
    """Regenerate with `python -m router docs PAGE > docs/reference-PAGE.md` when it fails."""
    out = io.StringIO()
    assert main(["docs", page], out=out) == 0
    assert (ROOT / "docs" / f"reference-{page}.md").read_text(encoding="utf-8") == out.getvalue()


def _names_read() -> set[str]:
    """Every ROUTER_* setting the package reads, by name, where it reads one."""
    names: set[str] = set()
    for path in (ROOT / "router").rglob("*.py"):
        if path.name == "setting_docs.py":
            continue
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"""(?:get|environ\[|\bserved\.get|env\.get)\(?\s*["'](ROUTER_[A-Z0-9_]+)["']""", text))
        names |= set(re.findall(r"""_beacon_limit\(\s*["'](ROUTER_[A-Z0-9_]+)["']""", text))
    return names


def test_every_setting_read_has_its_line_and_every_line_is_read() -> None:
    listed = {setting.name for setting in SETTINGS if setting.name}
    read = _names_read()
    assert read, "no settings found: the pattern that finds them is broken"
    assert listed == read, f"read but not listed: {sorted(read - listed)}; listed but not read: {sorted(listed - read)}"


def test_every_metric_family_is_on_its_page() -> None:
    page = (ROOT / "docs" / "reference-metrics.md").read_text(encoding="utf-8")
    for family in FAMILIES.values():
        assert f"`{family.name}{'_total' if family.kind == 'counter' else ''}`" in page


def test_every_command_is_on_the_command_lines_page() -> None:
    page = (ROOT / "docs" / "reference-cli.md").read_text(encoding="utf-8")
    for command in ("serve", "sign", "explain", "report", "db upgrade", "tokens create", "links create", "docs",
                    "rules check", "rules test", "rules diff", "rules matrix", "rules schema", "rules docs"):
        assert f"## `adlink-router {command}`" in page, command
