"""The app catalogue (rules/apps.yaml): an app is one entry, known to every part of the router, and a bad
entry or a greedy marker is refused with where it is written and what it would do.

Every test here changes YAML only: a copy of the shipped rules with an entry added or changed. No Python
file is touched to add an app.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from urllib.parse import quote

import httpx
import jsonschema
import pytest
import yaml
from starlette.testclient import TestClient

from router.cli import main
from router.decision.apps import bundled_catalogue, bundled_rules_dir
from router.decision.clients import ClientReader, reader_of
from router.decision.rules import RuleSetError, load_rules
from router.serve.config import Settings
from router.serve.web import create_app
from tests.conftest import TEST_KEYS
from tests.servers import Server, wait_until

LEMONCHAT = """
  - id: lemonchat
    names: {zh-CN: 柠檬聊天, en: LemonChat}
    markers: [LemonChat]
    kind: inapp
    leave: menu
"""
LEMONCHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "Mobile/15E148 LemonChat/3.2.1 NetType/WIFI")
LEMONCHAT_RULE = """  - id: lemonchat-landing
    description: LemonChat's web view gets the landing page.
    when: {app: lemonchat}
    then: landing
"""
ITEM = "https://item.taobao.com/item.htm?id=123456"


def with_app(tmp_path: Path, entry: str = LEMONCHAT, rule: str = LEMONCHAT_RULE) -> Path:
    """A copy of the shipped rules with `entry` added to the catalogue (just above `other_inapp`) and `rule`
    first among the rules."""
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules, ignore=shutil.ignore_patterns("user_agents"))
    apps = (rules / "apps.yaml").read_text(encoding="utf-8")
    at = apps.index("  - id: other_inapp")
    (rules / "apps.yaml").write_text(apps[:at] + entry.lstrip("\n") + "\n" + apps[at:], encoding="utf-8")
    if rule:
        text = (rules / "default.yaml").read_text(encoding="utf-8")
        (rules / "default.yaml").write_text(text.replace("rules:\n", "rules:\n" + rule, 1), encoding="utf-8")
    return rules


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def test_a_new_app_is_one_entry(tmp_path: Path) -> None:
    """LemonChat, added to a copy of the catalogue: explain reads it with its version, a rule names it, the
    landing page names it in both languages and guides out through the menu, and `rules check` is clean."""
    rules = with_app(tmp_path)
    code, text = run("rules", "check", str(rules))
    assert code == 0 and text.startswith("ok: 12 rules"), text
    assert "27 apps (" in text
    assert "known user agents (rules/user_agents) read as the shipped catalogue reads them" in text

    code, text = run("explain", f"/go?url={quote(ITEM, safe='')}", "--ua", LEMONCHAT_UA, "--rules", str(rules),
                     "--format", "text")
    assert code == 0, text
    assert "lemonchat 3.2.1" in text and "lemonchat-landing" in text, text
    code, text = run("explain", f"/go?url={quote(ITEM, safe='')}", "--ua", LEMONCHAT_UA, "--rules", str(rules),
                     "--format", "json")
    result = json.loads(text)
    assert result["client"]["app"] == "lemonchat" and result["client"]["app_version"] == "3.2.1", result["client"]
    assert result["rule"] == "lemonchat-landing"

    ruleset = load_rules(rules)
    http = TestClient(create_app(Settings(rules_dir=rules, signing_keys=TEST_KEYS), ruleset), follow_redirects=False)
    for lang, name, label in (("zh-CN", "柠檬聊天", "在浏览器打开"), ("en", "LemonChat", "Open in Browser")):
        page = http.get("/go", params={"url": ITEM}, headers={"user-agent": LEMONCHAT_UA, "accept-language": lang})
        assert page.status_code == 200, page.text
        assert 'data-mode="inapp"' in page.text and 'class="card guide"' in page.text
        assert name in page.text and label in page.text, lang
        assert "this app" not in page.text and "当前应用" not in page.text


def test_a_typo_in_a_rule_names_the_closest_app(tmp_path: Path) -> None:
    rules = with_app(tmp_path, rule=LEMONCHAT_RULE.replace("{app: lemonchat}", "{app: lemonchta}"))
    with pytest.raises(RuleSetError) as raised:
        load_rules(rules)
    assert re.search(r"default\.yaml:\d+:\d+: unknown app 'lemonchta'; did you mean 'lemonchat'\?", str(raised.value))


def test_a_greedy_marker_fails_the_check_with_what_it_would_reclassify(tmp_path: Path) -> None:
    """A marker every phone browser carries would make hundreds of known user agents 'lemonchat': the rules are
    refused, by `rules check` and by the loader the server uses, at the entry's line, with the count and what
    they were."""
    rules = with_app(tmp_path, LEMONCHAT.replace("[LemonChat]", "[LemonChat, Mobile]"))
    (rules / "user_agents").symlink_to(bundled_rules_dir() / "user_agents")
    code, text = run("rules", "check", str(rules))
    assert code == 1, text
    # At the marker's own line.
    line = next(n for n, row in enumerate((rules / "apps.yaml").read_text().splitlines(), 1)
                if "markers: [LemonChat, Mobile]" in row)
    found = re.search(rf"apps\.yaml:{line}:1: error: marker 'Mobile' would make ([\d,]+) known user agents "
                      r"'lemonchat' \(([\d,]+) browser", text)
    assert found, text
    assert int(found.group(1).replace(",", "")) > 200 and int(found.group(2).replace(",", "")) > 100
    assert "use a token this app's user agent alone sends" in text
    assert re.search(r"apps\.yaml:1:1: error: [\d,]+ of [\d,]+ known user agents \(rules/user_agents\) read as "
                     r"another app than their label and the shipped catalogue say: too many: the catalogue is refused",
                     text), text
    with pytest.raises(RuleSetError, match="marker 'Mobile' would make"):
        load_rules(rules)  # what the server loads, at start and on every reload
    # A marker of its own only: nothing known moves.
    code, text = run("rules", "check", str(with_app(tmp_path / "ok")))
    assert code == 0 and "would make" not in text


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace("names: {zh-CN: 柠檬聊天, en: LemonChat}", "names: {zh-CN: 柠檬聊天}"),
     r"lemonchat: 'names' needs every language the pages speak \(zh-CN, en\); missing en"),
    (lambda t: t.replace("[LemonChat]", "[LC]"), r"marker 'LC' must be 3 to 64 printable ASCII"),
    (lambda t: t.replace("[LemonChat]", "[MicroMessenger/8]"),
     r"marker 'MicroMessenger/8' contains wechat's marker 'MicroMessenger/'"),
    (lambda t: t.replace("[LemonChat]", "[Quark/]"), r"marker 'Quark/' is already quark's"),
    (lambda t: t.replace("[LemonChat]", "[]"), r"lemonchat: no markers, so no user agent can ever be 'lemonchat'"),
    (lambda t: t.replace("kind: inapp\n    leave: menu\n", "kind: inap\n    leave: menu\n", 1),
     r"unknown kind 'inap'; did you mean 'inapp'\?"),
    (lambda t: t.replace("id: lemonchat", "id: LemonChat"), r"app id 'LemonChat' must be lower-case"),
    (lambda t: t.replace("id: lemonchat", "id: wechat"), r"duplicate app id 'wechat' \(first at .*apps\.yaml:\d+\)"),
    (lambda t: t.replace("    leave: menu\n", "    leave: menu\n    colour: red\n", 1),
     r"unknown key 'colour' in an app"),
])
def test_a_bad_entry_is_refused_where_it_is_written(tmp_path: Path, change: object, message: str) -> None:
    rules = with_app(tmp_path, change(LEMONCHAT), rule="")  # type: ignore[operator]
    with pytest.raises(RuleSetError) as raised:
        load_rules(rules)
    assert re.search(r"apps\.yaml:\d+:\d+: .*" + message, str(raised.value)), str(raised.value)


def test_a_catalogue_without_an_app_the_code_names_is_refused(tmp_path: Path) -> None:
    rules = with_app(tmp_path, rule="")
    text = (rules / "apps.yaml").read_text(encoding="utf-8")
    start = text.index("  - id: wecom")
    (rules / "apps.yaml").write_text(text[:start] + text[text.index("  - id: wechat"):], encoding="utf-8")
    (rules / "default.yaml").write_text((rules / "default.yaml").read_text().replace("wecom, ", ""))
    with pytest.raises(RuleSetError) as raised:
        load_rules(rules)
    assert "the catalogue lacks 'wecom', which the router's code names (its desktop app)" in str(raised.value)


def test_the_catalogue_is_published_in_the_schema(tmp_path: Path) -> None:
    """rules/schema.json checks an apps file as the loader does: the shipped one passes, a bad kind fails."""
    schema = json.loads((bundled_rules_dir() / "schema.json").read_text())
    apps = yaml.safe_load((bundled_rules_dir() / "apps.yaml").read_text())
    jsonschema.validate(apps, schema)
    assert schema["$defs"]["when"]["properties"]["app"]["anyOf"][0]["enum"] == list(bundled_catalogue().ids)
    apps["apps"][0]["kind"] = "inap"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(apps, schema)


def test_rules_diff_shows_the_catalogue_change_on_recorded_clicks(tmp_path: Path) -> None:
    rules = with_app(tmp_path)
    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text("".join(json.dumps({"request": f"/go?url={quote(ITEM, safe='')}", "ua": ua,
                                          "at": "2026-12-01T10:00:00+08:00"}) + "\n"
                              for ua in (LEMONCHAT_UA, LEMONCHAT_UA, "Mozilla/5.0 (compatible; Googlebot/2.1)")))
    code, text = run("rules", "diff", str(bundled_rules_dir()), str(rules), "--clicks", str(clicks))
    assert code == 0, text
    assert "+ lemonchat" in text and "clicks read as another app: 2" in text and "other_inapp → lemonchat" in text


def test_a_marker_in_a_templates_fixed_text_turns_the_fast_paths_off() -> None:
    """A catalogue whose marker could occur in the common browsers' fixed text reads them the long way, so
    the answer is the catalogue's: the fast path never disagrees with it."""
    text = (bundled_rules_dir() / "apps.yaml").read_text(encoding="utf-8")
    greedy = text.replace("  - id: other_inapp", LEMONCHAT.replace("[LemonChat]", "[Safari/604.1]").lstrip("\n")
                          + "\n  - id: other_inapp")
    from router.decision.apps import parse_catalogue_text

    catalogue = parse_catalogue_text(greedy, "apps.yaml")
    reader = reader_of(catalogue)
    assert isinstance(reader, ClientReader) and not reader._browser_templates and reader._wechat_template
    safari = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.5 Mobile/15E148 Safari/604.1")
    assert reader.parse(safari).app == "lemonchat"
    assert reader_of(bundled_catalogue()).parse(safari).app == "browser"


def test_a_catalogue_change_is_served_without_a_restart(tmp_path: Path) -> None:
    """A real server on a copy of the shipped rules: LemonChat's tap is another app's until the catalogue
    names it; saved, the next page names 柠檬聊天."""
    rules = with_app(tmp_path, entry="", rule="")
    server = Server("--rules", str(rules), env={"ROUTER_RULES_POLL_SECONDS": "0.2"}).wait_ready()
    try:
        def page() -> str:
            return httpx.get(f"{server.base}/go", params={"url": ITEM},
                             headers={"user-agent": LEMONCHAT_UA, "accept-language": "zh-CN"}).text

        assert "当前应用" in page() and "柠檬聊天" not in page()
        apps = (rules / "apps.yaml").read_text(encoding="utf-8")
        at = apps.index("  - id: other_inapp")
        (rules / "apps.yaml").write_text(apps[:at] + LEMONCHAT.lstrip("\n") + "\n" + apps[at:], encoding="utf-8")
        wait_until(lambda: "柠檬聊天" in page(), 10, "the reloaded catalogue")
    finally:
        server.stop()


def test_an_app_with_no_way_to_a_browser_gets_what_to_copy() -> None:
    """An Alipay mini program (`leave: none`): no menu guide to follow, the app named, the code to copy."""
    # One of its known user agents (rules/user_agents/named_apps.jsonl names where it was found).
    ua = next(json.loads(line)["ua"] for line in (bundled_rules_dir() / "user_agents" / "named_apps.jsonl")
              .read_text(encoding="utf-8").splitlines() if '"app": "alipay_miniprogram"' in line)
    http = TestClient(create_app(Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS),
                                 load_rules(bundled_rules_dir())), follow_redirects=False)
    page = http.get("/go", params={"url": "https://m.tb.cn/h.5Gx2Lq9?tk=AbCd1234"},
                    headers={"user-agent": ua, "accept-language": "zh-CN"})
    assert page.status_code == 200, page.text
    assert 'data-mode="inapp"' in page.text and "支付宝小程序内不能直接打开" in page.text
    assert "到浏览器或淘宝 App 中打开" in page.text and "右上角" not in page.text
    assert 'id="copy-text"' in page.text and "AbCd1234" in page.text


def test_explain_names_any_catalogue_app_by_its_known_user_agents() -> None:
    """`explain --client kuaishou_ios`: no named client in code, one of the app's known user agents."""
    code, text = run("explain", f"/go?url={quote(ITEM, safe='')}", "--client", "kuaishou_ios", "--format", "text")
    assert code == 0, text
    assert re.search(r"^app +Kuaishou / 快手, inapp \(leave: menu\); marker 'Kwai/' \(rules/apps\.yaml:\d+\)$", text,
                     re.MULTILINE), text
    assert "other-inapp-landing" in text


def test_a_new_app_with_its_known_user_agent_is_noted_not_warned(tmp_path: Path) -> None:
    """The owner's own corpus line for the new app moves onto its label: said as a note, and no warning."""
    rules = with_app(tmp_path)
    corpus = rules / "user_agents"
    shutil.copytree(bundled_rules_dir() / "user_agents", corpus)
    (corpus / "lemonchat.jsonl").write_text(json.dumps({"ua": LEMONCHAT_UA, "app": "other_inapp", "os": "ios",
                                                        "device": "mobile", "path": "test", "label": "test"})
                                            .replace('"other_inapp"', '"lemonchat"') + "\n")
    code, text = run("rules", "check", str(rules))
    assert code == 0, text
    assert re.search(r"apps\.yaml:\d+:1: note: marker 'LemonChat' would make 1 known user agent 'lemonchat' "
                     r"\(1 onto their label\)", text), text
    assert text.rstrip().endswith("0 warnings"), text


def test_a_broken_catalogue_is_not_blamed_twice(tmp_path: Path) -> None:
    """A mistake in an entry is reported there, and the rules naming that app are not also 'unknown app'."""
    rules = with_app(tmp_path, LEMONCHAT.replace("kind: inapp", "kind: inap"))
    code, text = run("rules", "check", str(rules))
    assert code == 1
    assert "unknown kind 'inap'; did you mean 'inapp'?" in text and "unknown app" not in text, text
