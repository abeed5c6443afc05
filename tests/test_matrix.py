"""`rules matrix`: the decision table of named clients × channels, as text and as one HTML page."""

from __future__ import annotations

import argparse
import io
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from router.decision.named_clients import CLIENTS
from router.decision.rules import RuleSet, load_rules
from router.decision.types import Action
from router.policy import matrix
from router.policy.matrix import COLUMNS, Matrix, build_matrix, render_html, render_text
from router.serve.config import Settings, bundled_rules_dir

AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped(settings: Settings, shipped_rules: RuleSet) -> Matrix:
    return build_matrix(shipped_rules, settings, at=AT)


def _cell(table: Matrix, client: str, column: str) -> tuple[str, str]:
    index = [c.title for c in COLUMNS].index(column)
    [cells] = [cells for named, cells in table.rows if named.name == client]
    return cells[index].answer.action.value, cells[index].answer.rule


@pytest.mark.parametrize(
    ("client", "column", "action", "rule"),
    [
        ("wechat_ios", "ad: unidesk", "app", "wechat-ad-unidesk-app"),
        ("wechat_android", "ad: other source", "landing", "wechat-ad-other-landing"),
        ("wechat_ios", "private_chat", "web", "wechat-private-chat-web"),
        ("wechat_android", "group_chat", "landing", "wechat-group-chat-landing"),
        ("wechat_miniprogram", "moments", "landing", "wechat-moments-unknown-landing"),
        ("wechat_ios", "unknown", "landing", "wechat-moments-unknown-landing"),
        ("wechat_windows", "group_chat", "web", "desktop-web"),
        ("wecom_ios", "ad: unidesk", "landing", "other-inapp-landing"),
        ("taobao_ios", "moments", "app", "taobao-inapp-app"),
        ("chrome_android", "unknown", "app", "mobile-browser-app"),
        ("googlebot", "ad: unidesk", "web", "bots-web"),
    ],
)
def test_shipped_matrix_key_cells(shipped: Matrix, client: str, column: str, action: str, rule: str) -> None:
    """The cells policy owners ask about hold the shipped rules' answers."""
    assert _cell(shipped, client, column) == (action, rule)


def test_matrix_has_every_named_client_and_no_dark_rule(shipped: Matrix) -> None:
    """One row per named client, in table order, and one per app of the catalogue no named client is read as
    (one of its known user agents, named after it); the rollout-0 pilot shows nowhere."""
    names = [client.name for client, _ in shipped.rows]
    assert [name for name in names if name in CLIENTS] == list(CLIENTS)
    covered = {str(shipped.rules.reader.parse(client.ua).app) for client, _ in shipped.rows}
    known = {"xiaohongshu", "pinduoduo", "meituan", "kuaishou", "bilibili", "zhihu", "toutiao", "jd", "uc", "quark",
             "alipay_miniprogram"}
    assert known <= covered and known <= set(names)
    assert not any(cell.rollouts for _, cells in shipped.rows for cell in cells)


def test_partial_rollout_shows_both_answers(rules_dir: Path, settings: Settings) -> None:
    """A rule at 5% shows beside the answer everyone else gets, only in the cells it applies to."""
    (rules_dir / "main.yaml").write_text(
        "rules:\n"
        "  - {id: pilot, when: {app: wechat, channel: group_chat, rollout: 5}, then: web}\n"
        "  - {id: wechat, when: {app: wechat}, then: landing}\n"
        "default: app\n"
    )
    table = build_matrix(load_rules(rules_dir), settings, at=AT)
    [cells] = [cells for client, cells in table.rows if client.name == "wechat_ios"]
    group_chat = cells[[c.title for c in COLUMNS].index("group_chat")]
    assert (group_chat.answer.action, group_chat.answer.rule) == (Action.LANDING, "wechat")
    assert [(percent, got.action, got.rule) for percent, got in group_chat.rollouts] == [(5, Action.WEB, "pilot")]
    assert group_chat.text() == "landing (wechat); 5%: web (pilot)"
    with_rollout = [client.name for client, row in table.rows if any(cell.rollouts for cell in row)]
    assert with_rollout == ["wechat_ios", "wechat_android", "wechat_miniprogram", "wechat_windows", "wechat_mac"]


def test_text_is_an_aligned_table(shipped: Matrix) -> None:
    """Every cell starts under its column title; group names stand on their own lines."""
    lines = render_text(shipped).splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("client"))
    assert " ".join(lines[:at]) == (f"rules {shipped.rules.version} ({', '.join(shipped.rules.files)}); "
                                    f"link https://item.taobao.com/item.htm?id=123456; at 2026-11-21T10:00:00+00:00")
    header = lines[at]
    starts = [header.index(column.title) for column in COLUMNS]
    row = next(line for line in lines if line.startswith("  wechat_ios "))
    assert [row[start:].split(" ")[0] for start in starts] == ["app", "landing", "web", "landing", "landing", "landing"]
    assert "WeChat" in lines and "bots" in lines


class _Tags(HTMLParser):
    """Every tag and attribute name in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.add(tag)
        self.found.update(name for name, _ in attrs)


HOSTILE_LINK = 'https://item.taobao.com/item.htm?id=1&q="><script>alert(1)</script>'


def _hostile_page(rules_dir: Path, settings: Settings) -> str:
    (rules_dir / "main.yaml").write_text(
        "rules:\n"
        "  - id: '<img src=x onerror=alert(1)>'\n"
        "    description: '\"><script>alert(2)</script>'\n"
        "    when: {app: bot}\n"
        "    then: web\n"
        "default: landing\n"
    )
    table = build_matrix(load_rules(rules_dir), settings, link=HOSTILE_LINK, at=AT)
    return render_html(table, generated=AT)


def test_html_escapes_every_value(rules_dir: Path, settings: Settings) -> None:
    """Rule ids, descriptions and the link land in the page as text, never as markup."""
    page = _hostile_page(rules_dir, settings)
    assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "id=1&amp;q=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_is_self_contained(rules_dir: Path, settings: Settings, shipped: Matrix) -> None:
    """One page with inline CSS only: no scripts, no external resources, a CSP that forbids loading any."""
    for page in (render_html(shipped, generated=AT), _hostile_page(rules_dir, settings)):
        assert page.startswith("<!doctype html>")
        assert "default-src 'none'; style-src 'unsafe-inline'" in page
        tags = _Tags()
        tags.feed(page)
        assert not tags.found & {"script", "link", "img", "iframe", "object", "embed", "base", "src", "href"}
        assert not re.search(r"url\(|@import", page, re.I)


def test_html_has_legend_version_and_colour_per_action(shipped: Matrix) -> None:
    """The page names the rules version and time, explains each colour, and colours cells by action."""
    page = render_html(shipped, generated=AT)
    assert f"<code>{shipped.rules.version}</code>" in page and "generated 2026-11-21T10:00:00+00:00" in page
    for action in Action:
        assert f'<li><span class="{action}"></span><b>{action}</b>' in page
        assert f".{action}{{background:" in page
    assert '<td class="app"><b>app</b><small title="wechat-ad-unidesk-app (' in page


def _run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    monkeypatch.delenv("ROUTER_SIGNING_KEYS", raising=False)
    parser = argparse.ArgumentParser()
    matrix.register(parser.add_subparsers())
    args = parser.parse_args(["matrix", *argv])
    out = io.StringIO()
    return args.run(args, out), out.getvalue()


def test_command_writes_html_to_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--format html --output FILE writes the page there and nothing to standard output."""
    target = tmp_path / "matrix.html"
    status, output = _run(monkeypatch, str(bundled_rules_dir()), "--format", "html", "--output", str(target))
    assert (status, output) == (0, "")
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_command_prints_text_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --format the table is printed as text."""
    status, output = _run(monkeypatch, str(bundled_rules_dir()), "--at", "2026-11-21T18:00:00+08:00")
    assert status == 0
    lines = output.splitlines()
    head = " ".join(lines[:next(n for n, line in enumerate(lines) if line.startswith("client"))])
    assert head.endswith("; at 2026-11-21T18:00:00+08:00")


def test_command_refuses_a_link_outside_the_allowlist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --link the router would refuse is a usage error (exit 2) that says why."""
    status, output = _run(monkeypatch, str(bundled_rules_dir()), "--link", "https://evil.example/")
    assert (status, output) == (2, "")
    assert capsys.readouterr().err.startswith("error: --link: host 'evil.example' is not allowed")


def test_rules_on_advertisers_and_campaigns_show_and_the_text_fits_120_columns(
    rules_dir: Path, settings: Settings
) -> None:
    """An advertiser blocked and a campaign sent to the web: noted where they answer otherwise, in text and
    HTML; every text line within 120 columns, each rule numbered with where it is written."""
    (rules_dir / "main.yaml").write_text(
        "rules:\n"
        "  - {id: block-rogue-advertiser, when: {channel: ad, advertiser: '6666'}, then: block}\n"
        "  - {id: campaign-web, when: {channel: ad, campaign: c-618}, then: web}\n"
        "  - {id: gdt-block, when: {channel: ad, ad_source: gdt}, then: block}\n"
        "  - {id: pilot, when: {app: wechat, channel: group_chat, rollout: 5}, then: web}\n"
        "  - {id: wechat, when: {app: wechat}, then: landing}\n"
        "default: app\n"
    )
    table = build_matrix(load_rules(rules_dir), settings, at=AT)
    text = render_text(table)
    assert max(len(line) for line in text.splitlines()) <= 120
    number = re.search(r"\[(\d+)\] block-rogue-advertiser \(.*main\.yaml:2\)", text)
    assert number, text
    assert f"  ad: unidesk, advertiser 6666: block [{number.group(1)}] for every client" in text
    assert "  ad: other source, campaign c-618: web [" in text
    assert "  ad: unidesk, ad_source gdt: block [" in text  # a source without a column of its own
    # With the pilot's cells too wide for one table, one block per client, a line per channel.
    lines = text.splitlines()
    block = lines[lines.index("WeChat: wechat_ios") + 1:][:len(COLUMNS)]
    assert block[0].startswith("  ad: unidesk") and block[0].endswith("*")
    assert any(line.startswith("  group_chat") and "5%: web [" in line for line in block)
    assert "advertiser 6666: " in render_html(table) and "block-rogue-advertiser" in render_html(table)
