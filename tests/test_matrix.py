"""`rules matrix`: the decision table of named clients × channels, as text and as one HTML page."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
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


def _matrix_of(rules_dir: Path, settings: Settings, rules: str) -> Matrix:
    """The matrix of `rules`, written as the directory's one rule file, at AT."""
    (rules_dir / "main.yaml").write_text(rules)
    return build_matrix(load_rules(rules_dir), settings, at=AT)


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
    table = _matrix_of(rules_dir, settings, (
        "rules:\n"
        "  - {id: pilot, when: {app: wechat, channel: group_chat, rollout: 5}, then: web}\n"
        "  - {id: wechat, when: {app: wechat}, then: landing}\n"
        "default: app\n"
    ))
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
    table = _matrix_of(rules_dir, settings, (
        "rules:\n"
        "  - {id: block-rogue-advertiser, when: {channel: ad, advertiser: '6666'}, then: block}\n"
        "  - {id: campaign-web, when: {channel: ad, campaign: c-618}, then: web}\n"
        "  - {id: gdt-block, when: {channel: ad, ad_source: gdt}, then: block}\n"
        "  - {id: pilot, when: {app: wechat, channel: group_chat, rollout: 5}, then: web}\n"
        "  - {id: wechat, when: {app: wechat}, then: landing}\n"
        "default: app\n"
    ))
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


# Rules on a per-ad fact (ad source, advertiser, campaign) outside the ad columns: an ad link re-shared into a
# chat or Moments keeps its verified claim (from=…), and one signed with a channel (ch=…) lands in that channel.


def _noted(table: Matrix) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """(client, column) → the cell's notes, as (label, action, rule)."""
    return {(client.name, column.title): [(label, got.action.value, got.rule) for label, got in cell.ad_notes]
            for client, cells in table.rows for column, cell in zip(COLUMNS, cells, strict=True) if cell.ad_notes}


def _text_cells(text: str) -> dict[tuple[str, str], str]:
    """(client, column) → the cell as the text table prints it (the table layout, not one block per client)."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("client "))
    starts = [header.index(column.title) for column in COLUMNS]
    ends = [*starts[1:], None]
    cells = {}
    for line in lines[lines.index(header) + 1:]:
        if not line:
            break
        if line.startswith("  "):
            name = line.split()[0]
            for column, start, end in zip(COLUMNS, starts, ends, strict=True):
                cells[(name, column.title)] = line[start:end].strip()
    return cells


def _html_cells(page: str) -> dict[tuple[str, str], str]:
    """(client, column) → the inner HTML of that cell of the page's table."""
    cells = {}
    for row in re.findall(r'<tr><th class="client" scope="row" title="[^"]*">(.*?)</tr>', page):
        name = row.partition("<small>")[0]
        found = re.findall(r"<td [^>]*>(.*?)</td>", row)
        cells.update({(name, column.title): inner for column, inner in zip(COLUMNS, found, strict=True)})
    return cells


def _footnotes(text: str) -> list[str]:
    """The notes below the `* …:` heading, a note's wrapped lines joined."""
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("* "))
    end = next(n for n in range(start, len(lines)) if lines[n].endswith(":"))
    notes: list[str] = []
    for line in lines[end + 1:]:
        if line.startswith("    "):
            notes[-1] += " " + line.strip()
        else:
            notes.append(line.strip())
    return notes


ADVERTISER_IN_GROUP_CHATS = (
    "rules:\n"
    "  - {id: desktop-web, when: {device: desktop}, then: web}\n"
    "  - {id: adv-1001-group-block, when: {advertiser: '1001', channel: group_chat, app: wechat}, then: block}\n"
    "  - {id: wechat, when: {app: wechat}, then: landing}\n"
    "default: app\n"
)
WECHAT_PHONES = ["wechat_ios", "wechat_android", "wechat_miniprogram"]


def test_advertiser_rule_in_group_chats_marks_the_cells_it_affects(rules_dir: Path, settings: Settings) -> None:
    """Advertiser 1001's re-shared ads blocked in WeChat group chats: marked in the group chat cells of the
    WeChat phones, with the advertiser and the rule said below the table, in text and HTML; not in the cells
    the rule can't reach (desktop WeChat, which an earlier rule answers; other apps; other channels)."""
    table = _matrix_of(rules_dir, settings, ADVERTISER_IN_GROUP_CHATS)
    expected = [("advertiser 1001", "block", "adv-1001-group-block")]
    assert _noted(table) == {(name, "group_chat"): expected for name in WECHAT_PHONES}

    text = render_text(table)
    assert max(len(line) for line in text.splitlines()) <= 120
    cells = _text_cells(text)
    assert cells[("wechat_ios", "group_chat")] == "landing [3] *"
    assert cells[("wechat_windows", "group_chat")] == "web [1]"
    assert cells[("chrome_android", "group_chat")] == "app [4]"
    marked = sorted(key for key, value in cells.items() if value.endswith("*"))
    assert marked == sorted((name, "group_chat") for name in WECHAT_PHONES)
    assert re.search(r"^\[2\] adv-1001-group-block \(.*main\.yaml:3\)$", text, re.M), text
    assert _footnotes(text) == [f"group_chat, advertiser 1001: block [2] for {', '.join(WECHAT_PHONES)}"]

    page = render_html(table, generated=AT)
    html_cells = _html_cells(page)
    marked_html = sorted(key for key, inner in html_cells.items() if "advertiser 1001" in inner)
    assert marked_html == sorted((name, "group_chat") for name in WECHAT_PHONES)
    assert "adv-1001-group-block" in html_cells[("wechat_ios", "group_chat")]
    assert "adv-1001-group-block" not in html_cells[("wechat_windows", "group_chat")]
    notes = re.findall(r'<ul class="notes">(.*?)</ul>', page, re.S)
    assert len(notes) == 1 and "group_chat" in notes[0] and "advertiser 1001" in notes[0]
    assert "adv-1001-group-block" in notes[0] and "main.yaml:3" in notes[0] and "wechat_miniprogram" in notes[0]


def test_campaign_rule_marks_moments_and_unknown_cells_on_ios_only(rules_dir: Path, settings: Settings) -> None:
    """A campaign sent to the web in Moments and on unknown channels (an ad link signed ch=unknown), on iOS
    only: marked there for every iOS client, nowhere else."""
    (rules_dir / "main.yaml").write_text(
        "rules:\n"
        "  - {id: c-618-ios-web, when: {campaign: c-618, channel: [moments, unknown], os: ios}, then: web}\n"
        "default: landing\n"
    )
    rules = load_rules(rules_dir)
    table = build_matrix(rules, settings, at=AT)
    ios = [client.name for client, _ in table.rows if rules.reader.parse(client.ua).os == "ios"]
    assert "wechat_ios" in ios and "safari_ios" in ios and "wechat_android" not in ios
    expected = [("campaign c-618", "web", "c-618-ios-web")]
    assert _noted(table) == {(name, column): expected for name in ios for column in ("moments", "unknown")}

    text = render_text(table)
    cells = _text_cells(text)
    marked = sorted(key for key, value in cells.items() if value.endswith("*"))
    assert marked == sorted((name, column) for name in ios for column in ("moments", "unknown"))
    footnotes = _footnotes(text)
    assert footnotes[0].startswith("moments, campaign c-618: web [1] for wechat_ios, ")
    assert any(line.startswith("unknown, campaign c-618: web [1] for wechat_ios, ") for line in footnotes)

    page = render_html(table, generated=AT)
    marked_html = sorted(key for key, inner in _html_cells(page).items() if "campaign c-618" in inner)
    assert marked_html == marked


def test_rules_naming_several_ad_fields_and_pilots_are_marked(rules_dir: Path, settings: Settings) -> None:
    """A rule on a source and an advertiser together, one on an advertiser and a campaign together, and a
    pilot on an advertiser: each marked where it answers, with every field it names (the pilot with its share)."""
    (rules_dir / "main.yaml").write_text(
        "rules:\n"
        "  - {id: gdt-1001-chat, when: {ad_source: gdt, advertiser: '1001', channel: private_chat}, then: block}\n"
        "  - {id: adv-7-c2, when: {channel: ad, advertiser: '7', campaign: c-2, app: wechat}, then: web}\n"
        "  - {id: adv-1001-pilot, when: {advertiser: '1001', channel: moments, os: android, rollout: 5}, then: app}\n"
        "default: landing\n"
    )
    rules = load_rules(rules_dir)
    table = build_matrix(rules, settings, at=AT)
    noted = _noted(table)
    assert noted[("chrome_windows", "private_chat")] == [("ad_source gdt, advertiser 1001", "block", "gdt-1001-chat")]
    assert noted[("wechat_ios", "ad: unidesk")] == [("advertiser 7, campaign c-2", "web", "adv-7-c2")]
    assert noted[("wechat_ios", "ad: other source")] == [("advertiser 7, campaign c-2", "web", "adv-7-c2")]
    assert noted[("wechat_android", "moments")] == [("advertiser 1001, 5% of visitors", "app", "adv-1001-pilot")]
    android = {client.name for client, _ in table.rows if rules.reader.parse(client.ua).os == "android"}
    assert {name for name, column in noted if column == "moments"} == android
    assert {name for name, column in noted if column.startswith("ad:")} == {
        client.name for client, _ in table.rows if rules.reader.parse(client.ua).app == "wechat"}
    assert {column for _, column in noted} == {"private_chat", "ad: unidesk", "ad: other source", "moments"}
    text = render_text(table)
    assert "  moments, advertiser 1001, 5% of visitors: app [3] for " in text
    assert "advertiser 1001, 5% of visitors: " in render_html(table, generated=AT)


def test_a_rules_advertisers_share_a_note_when_they_share_an_answer(rules_dir: Path, settings: Settings) -> None:
    """Advertisers a rule lists, answered alike: one note naming them all. When an earlier rule answers one of
    them otherwise, each gets its own note, so none is said to get an answer it doesn't."""
    table = _matrix_of(rules_dir, settings, (
        "rules:\n"
        "  - {id: adv-1002-web, when: {advertiser: '1002', channel: group_chat}, then: web}\n"
        "  - {id: advs-block, when: {advertiser: ['1001', '1002', '1003'], channel: [group_chat, moments]}, "
        "then: block}\n"
        "default: landing\n"
    ))
    noted = _noted(table)
    assert noted[("chrome_android", "moments")] == [("advertiser 1001 or 1002 or 1003", "block", "advs-block")]
    # 1002 is singled out by an earlier rule; 1001 and 1003, which no other rule names, are asked as one.
    assert noted[("chrome_android", "group_chat")] == [("advertiser 1002", "web", "adv-1002-web"),
                                                       ("advertiser 1001 or 1003", "block", "advs-block")]
    assert {column for _, column in noted} == {"group_chat", "moments"}
    assert "  moments, advertiser 1001 or 1002 or 1003: block [2] for every client" in render_text(table)


def test_a_long_list_of_advertisers_is_asked_as_one_and_named_in_short(rules_dir: Path, settings: Settings,
                                                                        ) -> None:
    """300 advertisers that no other rule names are answered alike: asked once per cell, not 300 times, and the
    note names the first few and how many more."""
    advertisers = ", ".join(f"'{n}'" for n in range(1000, 1300))
    table = _matrix_of(rules_dir, settings, (
        "rules:\n"
        f"  - {{id: many-block, when: {{advertiser: [{advertisers}], channel: group_chat}}, then: block}}\n"
        "default: landing\n"
    ))
    assert _noted(table)[("chrome_android", "group_chat")] == [
        ("advertiser 1000 or 1001 or 1002 or 297 more", "block", "many-block")]


def test_shipped_rules_mark_no_cell(shipped: Matrix) -> None:
    """The shipped rules name an ad source only for ads, and that source has its own column: nothing to note,
    and the text and the page say so by having no notes at all."""
    assert _noted(shipped) == {}
    assert "*" not in "".join(_text_cells(render_text(shipped)).values())
    assert '<ul class="notes">' not in render_html(shipped, generated=AT)


def test_every_condition_on_the_ad_claim_is_one_the_matrix_asks_about() -> None:
    """A condition type reading the ad claim is an AdField whose field the matrix knows how to sign: a new one
    can't go unseen in the matrix."""
    from router.decision.conditions import CONDITION_TYPES, AdField, Part

    on_ads = [kind for kind in CONDITION_TYPES.values() if Part.AD in kind.reads]
    assert on_ads and all(issubclass(kind, AdField) for kind in on_ads)
    assert {kind.key for kind in on_ads} <= set(matrix.AD_FIELDS)


def test_cli_marks_an_advertiser_rule_in_group_chats(rules_dir: Path, tmp_path: Path) -> None:
    """`python -m router rules matrix`, run for real: the group chat mark and its note in text and HTML."""
    (rules_dir / "main.yaml").write_text(ADVERTISER_IN_GROUP_CHATS)
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTER_")}
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "router", "rules", "matrix", str(rules_dir), "--at", "2026-11-21T18:00:00+08:00"]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    cells = _text_cells(done.stdout)
    assert cells[("wechat_android", "group_chat")] == "landing [3] *"
    assert cells[("wechat_android", "private_chat")] == "landing [3]"
    assert _footnotes(done.stdout) == [f"group_chat, advertiser 1001: block [2] for {', '.join(WECHAT_PHONES)}"]
    page = tmp_path / "matrix.html"
    done = subprocess.run([*command, "--format", "html", "--output", str(page)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    html_cells = _html_cells(page.read_text(encoding="utf-8"))
    assert "advertiser 1001" in html_cells[("wechat_android", "group_chat")]
    assert "advertiser 1001" not in html_cells[("chrome_android", "group_chat")]
