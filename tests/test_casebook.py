"""`rules test`: the shipped cases (each its own test), the named clients, and the case runner itself."""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.decision.click import read_click
from router.decision.clients import parse_client
from router.decision.named_clients import CLIENTS, GROUPS, UnknownClientError, user_agent
from router.decision.rules import RuleSet, Then, load_rules
from router.decision.types import OS, Action, App, Channel, Device
from router.policy import casebook
from router.policy.casebook import Case, Click, Verdict, load_cases, run_case, run_cases, unreached
from router.serve.config import Settings, bundled_rules_dir

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
SHIPPED_CASES = load_cases(bundled_rules_dir())


@pytest.mark.parametrize("case", SHIPPED_CASES, ids=[case.name or case.where for case in SHIPPED_CASES])
def test_shipped_case(case: Case, shipped_rules: RuleSet, settings: Settings) -> None:
    """Each case in rules/tests/ passes against the shipped rules."""
    result = run_case(case, shipped_rules, settings, NOW)
    assert result.verdict is Verdict.PASS, str(result)


def test_shipped_cases_reach_every_rule(shipped_rules: RuleSet, settings: Settings) -> None:
    """Every shipped rule and the default decide some case; the rollout-0 pilot through `in_rollout`."""
    assert unreached(shipped_rules, run_cases(SHIPPED_CASES, shipped_rules, settings, NOW)) == []


def test_a_dark_pilot_without_an_in_rollout_case_is_reported(tmp_path: Path, settings: Settings) -> None:
    """A rule at rollout 0 that no case reaches is listed as unreached, saying why."""
    (tmp_path / "r.yaml").write_text("rules:\n  - {id: pilot, when: {app: qq, rollout: 0}, then: web}\n"
                                     "default: landing\n")
    cases = tmp_path / "tests"
    cases.mkdir()
    (cases / "c.yaml").write_text("cases:\n  - name: qq\n    click: {url: 'https://item.taobao.com/item.htm?id=1',"
                                  " client: qq_android}\n    expect: {action: landing, rule: default}\n")
    rules = load_rules(tmp_path)
    missing = unreached(rules, run_cases(load_cases(tmp_path), rules, settings, NOW))
    assert [(item.rule, item.why) for item in missing] == [("pilot", "at rollout 0, no click reaches it")]


def test_shipped_cases_catch_any_change_of_a_rules_action(shipped_rules: RuleSet, settings: Settings) -> None:
    """Changing the action of any reachable shipped rule, or of the default, makes at least one case fail."""
    missing = {item.rule for item in unreached(shipped_rules, run_cases(SHIPPED_CASES, shipped_rules, settings, NOW))}
    unnoticed = []
    for index, rule in enumerate(shipped_rules.rules):
        if rule.id in missing:
            continue
        for action in Action:
            if action is rule.then.action:
                continue
            changed = list(shipped_rules.rules)
            changed[index] = dataclasses.replace(rule, then=Then(action))
            altered = dataclasses.replace(shipped_rules, rules=tuple(changed))
            if all(r.verdict is Verdict.PASS for r in run_cases(SHIPPED_CASES, altered, settings, NOW)):
                unnoticed.append(f"{rule.id} -> {action}")
    for action in Action:
        if action is not shipped_rules.default.action:
            altered = dataclasses.replace(shipped_rules, default=Then(action))
            if all(r.verdict is Verdict.PASS for r in run_cases(SHIPPED_CASES, altered, settings, NOW)):
                unnoticed.append(f"default -> {action}")
    assert unnoticed == []


# --- named clients ---

EXPECTED_CLIENTS: dict[str, tuple[App, OS, Device]] = {
    "wechat_ios": (App.WECHAT, OS.IOS, Device.MOBILE),
    "wechat_android": (App.WECHAT, OS.ANDROID, Device.MOBILE),
    "wechat_miniprogram": (App.WECHAT, OS.IOS, Device.MOBILE),
    "wecom_ios": (App.WECOM, OS.IOS, Device.MOBILE),
    "qq_android": ("qq", OS.ANDROID, Device.MOBILE),
    "weibo_ios": ("weibo", OS.IOS, Device.MOBILE),
    "alipay_android": ("alipay", OS.ANDROID, Device.MOBILE),
    "dingtalk_ios": ("dingtalk", OS.IOS, Device.MOBILE),
    "douyin_android": (App.DOUYIN, OS.ANDROID, Device.MOBILE),
    "baidu_android": ("baidu", OS.ANDROID, Device.MOBILE),
    "taobao_ios": (App.TAOBAO, OS.IOS, Device.MOBILE),
    "safari_ios": (App.BROWSER, OS.IOS, Device.MOBILE),
    "chrome_android": (App.BROWSER, OS.ANDROID, Device.MOBILE),
    "huawei_browser_harmonyos": (App.BROWSER, OS.HARMONYOS, Device.MOBILE),
    "qq_browser_android": (App.BROWSER, OS.ANDROID, Device.MOBILE),
    "chrome_windows": (App.BROWSER, OS.WINDOWS, Device.DESKTOP),
    "safari_mac": (App.BROWSER, OS.MACOS, Device.DESKTOP),
    "wechat_windows": (App.WECHAT, OS.WINDOWS, Device.DESKTOP),
    "wechat_mac": (App.WECHAT, OS.MACOS, Device.DESKTOP),
    "googlebot": (App.BOT, OS.OTHER, Device.DESKTOP),
    "facebook_preview": (App.BOT, OS.OTHER, Device.DESKTOP),
}


def test_every_named_client_has_an_expectation_here() -> None:
    """The table below covers exactly the named clients, and every client sits in a known group."""
    assert list(EXPECTED_CLIENTS) == list(CLIENTS)
    assert {client.group for client in CLIENTS.values()} == set(GROUPS)


@pytest.mark.parametrize("name", list(CLIENTS))
def test_named_client_parses_to_what_its_name_says(name: str) -> None:
    """Each named client's user agent reads as the app, OS and device its name says."""
    client = parse_client(CLIENTS[name].ua)
    assert (client.app, client.os, client.device) == EXPECTED_CLIENTS[name]
    assert client.mini_program == (name == "wechat_miniprogram")
    assert client.bot == (CLIENTS[name].group == "bots")


def test_unknown_client_name_suggests_the_closest() -> None:
    """A misspelt client name is refused with a did-you-mean."""
    with pytest.raises(UnknownClientError, match=r"^unknown client 'wechat_ois'; did you mean 'wechat_ios'\?$"):
        user_agent("wechat_ois")


# --- clicks built from cases ---


def test_ad_click_is_a_signed_ad_link_the_router_trusts(settings: Settings) -> None:
    """channel: ad builds an /ad link signed with the configured keys, read as a verified ad."""
    click = Click(url="https://item.taobao.com/item.htm?id=1", ua=user_agent("wechat_ios"), channel=Channel.AD,
                  ad_source="unidesk", advertiser="1001")
    path, _, query = click.request(settings.signing_keys).partition("?")
    ctx = read_click(path, query, click.ua, at=NOW, settings=settings)
    assert path == "/ad"
    assert ctx.channel is Channel.AD and ctx.ad is not None and ctx.ad.verified and ctx.ad.source == "unidesk"


@pytest.mark.parametrize(("channel", "share"), [(Channel.PRIVATE_CHAT, "from=singlemessage"),
                                                 (Channel.GROUP_CHAT, "from=groupmessage"),
                                                 (Channel.MOMENTS, "from=timeline")])
def test_chat_clicks_carry_wechats_share_parameter(settings: Settings, channel: Channel, share: str) -> None:
    """Chat and Moments clicks are /go links with WeChat's own from= parameter."""
    request = Click(url="https://item.taobao.com/item.htm?id=1", channel=channel).request(settings.signing_keys)
    assert request == f"/go?url=https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D1&{share}"


def test_unknown_channel_adds_nothing(settings: Settings) -> None:
    """channel: unknown is a bare /go link, like one pasted as plain text."""
    request = Click(url="https://item.taobao.com/item.htm?id=1", channel=Channel.UNKNOWN).request(settings.signing_keys)
    assert request == "/go?url=https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D1"


# --- the runner, on rules and cases of the tests' own ---

RULES = """\
rules:
  - id: wechat-ad-unidesk-app
    when: {app: wechat, channel: ad, ad_source: unidesk}
    then: app
  - id: wechat-landing
    when: {app: wechat}
    then: landing
  - id: never
    when: {app: taobao}
    then: app
default: web
"""

PASSING = """\
cases:
  - name: unidesk ad opens the app
    click: {url: "https://item.taobao.com/item.htm?id=1", client: wechat_ios, channel: ad, ad_source: unidesk}
    expect: {action: app, rule: wechat-ad-unidesk-app, location: "taobao://item.taobao.com/item.htm?id=1"}
  - name: safari falls to the default
    click: {url: "https://item.taobao.com/item.htm?id=1", client: safari_ios}
    expect: {action: web, rule: default}
"""


def _cases(rules_dir: Path, text: str, name: str = "cases.yaml") -> list[Case]:
    (rules_dir / "main.yaml").write_text(RULES)
    (rules_dir / "tests").mkdir(exist_ok=True)
    (rules_dir / "tests" / name).write_text(text)
    return load_cases(rules_dir)


def _results(rules_dir: Path, text: str, settings: Settings) -> list[str]:
    cases = _cases(rules_dir, text)
    return [str(result) for result in run_cases(cases, load_rules(rules_dir), settings, NOW)]


def test_passing_cases_pass(rules_dir: Path, settings: Settings) -> None:
    """Cases whose answers match print PASS with file:line and name."""
    assert _results(rules_dir, PASSING, settings) == [
        f"PASS {rules_dir}/tests/cases.yaml:2 unidesk ad opens the app",
        f"PASS {rules_dir}/tests/cases.yaml:5 safari falls to the default",
    ]


def test_failing_case_names_expected_and_got_and_why(rules_dir: Path, settings: Settings) -> None:
    """A wrong answer is a FAIL that says what was expected, what came, and why the expected rule missed."""
    text = """\
cases:
  - name: any ad opens the app
    click: {url: "https://item.taobao.com/item.htm?id=1", client: wechat_ios, channel: ad, ad_source: gdt}
    expect: {action: app, rule: wechat-ad-unidesk-app, status: 302}
"""
    [line] = _results(rules_dir, text, settings)
    # The reason in the middle is the condition's own explanation (router.decision.conditions words it).
    before, _, reason = line.partition("did not match: ")
    assert before == (f"FAIL {rules_dir}/tests/cases.yaml:2 any ad opens the app: expected app "
                      "(wechat-ad-unidesk-app), got landing (wechat-landing) — wechat-ad-unidesk-app ")
    assert "gdt" in reason and "status" not in reason  # a different action: status and location go unsaid


def test_failing_status_location_and_channel(rules_dir: Path, settings: Settings) -> None:
    """With the right action, status, location and channel are compared when the case gives them."""
    text = """\
cases:
  - name: wrong status, location and channel
    click: {url: "https://item.taobao.com/item.htm?id=1", client: wechat_ios, channel: group_chat}
    expect: {action: landing, status: 302, location: "https://example.com/", channel: moments}
"""
    assert _results(rules_dir, text, settings) == [
        f"FAIL {rules_dir}/tests/cases.yaml:2 wrong status, location and channel: expected status 302, got 200; "
        "expected location 'https://example.com/', got None; expected channel moments, got group_chat"
    ]


def test_refused_click_fails_with_the_reason(rules_dir: Path, settings: Settings) -> None:
    """A click the router refuses is `block (bad-request)`, and a FAIL quotes the refusal."""
    text = """\
cases:
  - name: evil host
    click: {url: "https://taobao.com.evil.com/", client: safari_ios}
    expect: {action: web}
"""
    [line] = _results(rules_dir, text, settings)
    assert line.startswith(f"FAIL {rules_dir}/tests/cases.yaml:2 evil host: expected web, got block (bad-request): "
                           "host 'taobao.com.evil.com' is not allowed")


def test_error_case_names_the_line_of_the_mistake(rules_dir: Path, settings: Settings) -> None:
    """A case with mistakes is an ERROR at the line of the first, each with a suggestion where there is one."""
    text = """\
cases:
  - name: typos
    click: {url: "https://item.taobao.com/item.htm?id=1", client: wechat_ois,
            chanel: ad}
    expect: {acton: app}
"""
    file = f"{rules_dir}/tests/cases.yaml"
    assert _results(rules_dir, text, settings) == [
        f"ERROR {file}:3 typos: 3 problems\n"
        f"  {file}:3:67: error: unknown client 'wechat_ois'; did you mean 'wechat_ios'?\n"
        f"  {file}:4:13: error: unknown key 'chanel' in 'click'; did you mean 'channel'?\n"
        f"  {file}:5:14: error: unknown key 'acton' in 'expect'; did you mean 'action'?"
    ]


def test_a_mistyped_client_key_says_the_client_is_missing(rules_dir: Path, settings: Settings) -> None:
    """`clinet:` is an unknown key, and the click has no client: never "not both"."""
    text = """\
cases:
  - name: typo
    click: {url: "https://item.taobao.com/item.htm?id=1", clinet: wechat_ios}
    expect: {action: landing}
"""
    (result,) = _results(rules_dir, text, settings)
    assert "not both" not in result and "the click needs a 'client'" in result
    assert "unknown key 'clinet' in 'click'; did you mean 'client'?" in result


def test_error_for_an_expected_rule_the_rules_lack(rules_dir: Path, settings: Settings) -> None:
    """Expecting a rule id that isn't in the rules is an ERROR (a typo), not a FAIL."""
    text = """\
cases:
  - name: typo in rule
    click: {url: "https://item.taobao.com/item.htm?id=1", client: wechat_ios}
    expect: {action: landing, rule: wechat-landng}
"""
    assert _results(rules_dir, text, settings) == [
        f"ERROR {rules_dir}/tests/cases.yaml:2 typo in rule: expected rule 'wechat-landng' is not in the rules; "
        "did you mean 'wechat-landing'?"
    ]


@pytest.mark.parametrize(
    ("click", "message"),
    [
        ('{client: wechat_ios}', "3:12: the click needs a 'url' (the link) or a 'request'"),
        ('{url: "https://item.taobao.com/item.htm?id=1", request: "/go?url=x", ua: ""}',
         "3:12: give the click either 'url' (the link) or 'request'"),
        ('{url: "https://item.taobao.com/item.htm?id=1"}', "3:12: the click needs a 'client'"),
        ('{url: "https://item.taobao.com/item.htm?id=1", ua: x, ad_source: unidesk}',
         "3:77: 'ad_source' only applies to 'channel: ad'"),
        ('{request: "/go?url=x", ua: x, channel: moments}',
         "3:51: 'channel' does not go with 'request': write it into the request"),
        ('{url: "https://item.taobao.com/item.htm?id=1", ua: x, channel: group_chat, params: {from: timeline}}',
         "3:102: params.from is already set by the case's url or channel; drop one"),
        ('{url: "https://item.taobao.com/item.htm?id=1", ua: x, at: "2026-11-11T10:00:00"}',
         "3:70: time '2026-11-11T10:00:00' has no timezone; add one, e.g. 2026-11-11T10:00:00+08:00"),
        ('{url: "https://item.taobao.com/item.htm?id=1", ua: x, channel: add}',
         "3:75: unknown channel 'add'; did you mean 'ad'?"),
        ('{url: !!python/object:os.system "x", ua: x}', "3:18: YAML tag 'tag:yaml.org,2002:python/object:os.system'"),
    ],
)
def test_bad_clicks_are_errors_at_file_line_col(rules_dir: Path, click: str, message: str) -> None:
    """Each mistake in a click is reported at its own file:line:col, in plain words."""
    text = f"cases:\n  - name: bad\n    click: {click}\n    expect: {{action: web}}\n"
    [case] = _cases(rules_dir, text)
    assert any(str(problem).startswith(f"{rules_dir}/tests/cases.yaml:{message}") for problem in case.problems), [
        str(problem) for problem in case.problems
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("cases:\n  - name: x\n    click: {url: [\n", "4:1: a quote or bracket opened and never closed"),
        ("tests:\n  - name: x\n", "1:1: unknown key 'tests' in a case file"),
        ("cases: {}\n", "1:8: 'cases' must be a list of cases"),
        ("", "1:1: no cases"),
        ("cases:\n  - &a {name: x, click: {url: u, ua: x}, expect: {action: web}}\n  - *a\n",
         "3:5: YAML aliases (*name) are not allowed in case files"),
        ("cases:\n  - {name: same, click: {url: u, ua: x}, expect: {action: web}}\n"
         "  - {name: same, click: {url: u, ua: x}, expect: {action: web}}\n",
         "3:1: a second case named 'same' (first at "),
    ],
)
def test_bad_case_files_are_errors_at_file_line(rules_dir: Path, settings: Settings, text: str, where: str) -> None:
    """A case file that can't be read is an ERROR naming file:line, and the command fails."""
    cases = _cases(rules_dir, text)
    problems = [str(problem) for case in cases for problem in case.problems]
    assert any(problem.startswith(f"{rules_dir}/tests/cases.yaml:{where}") for problem in problems), problems
    results = run_cases(cases, load_rules(rules_dir), settings, NOW)
    assert any(result.verdict is Verdict.ERROR for result in results)


def test_scalars_are_read_as_written(rules_dir: Path) -> None:
    """Unquoted numbers and times are taken as the text written: advertiser 1001 is "1001"."""
    text = """\
cases:
  - name: unquoted
    click: {url: "https://item.taobao.com/item.htm?id=1", ua: x, channel: ad, advertiser: 1001,
            at: 2026-11-11T10:00:00+08:00, params: {click_id: 42}}
    expect: {action: app, status: 302}
"""
    [case] = _cases(rules_dir, text)
    assert case.click is not None and case.expect is not None
    assert case.click.advertiser == "1001" and case.click.params == (("click_id", "42"),)
    assert case.click.at == datetime.fromisoformat("2026-11-11T10:00:00+08:00")
    assert case.expect.status == 302


# --- the command ---


def _run(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.delenv("ROUTER_SIGNING_KEYS", raising=False)
    out = io.StringIO()
    status = casebook.run(argparse.Namespace(directory=str(rules_dir)), out)
    return status, out.getvalue()


def test_command_prints_results_coverage_and_summary(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All passing: one line per case, the rules no case reached, a summary; exit 0."""
    _cases(rules_dir, PASSING)
    status, output = _run(rules_dir, monkeypatch)
    assert status == 0
    assert output.splitlines()[2:] == [
        f"not reached: wechat-landing ({rules_dir}/main.yaml:5): no case reaches it",
        f"not reached: never ({rules_dir}/main.yaml:8): no case reaches it",
        "coverage: 1 of 3 rules and the default reached",
        "2 cases: 2 passed, 0 failed, 0 errors",
    ]


def test_command_fails_on_a_failure_or_an_error(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any FAIL or ERROR makes the exit status 1, and no line is a bare 'N passed, N failed'."""
    _cases(rules_dir, PASSING.replace("action: web, rule: default", "action: app"))
    (rules_dir / "tests" / "broken.yaml").write_text("cases: [\n")
    status, output = _run(rules_dir, monkeypatch)
    assert status == 1
    assert output.splitlines()[-1] == "3 cases: 1 passed, 1 failed, 1 error"
    assert not any(re.fullmatch(r"\d+ passed, \d+ failed.*", line) for line in output.splitlines())


def test_command_fails_without_cases(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rules directory with no tests/ folder is a failure, not a silent pass."""
    (rules_dir / "main.yaml").write_text(RULES)
    status, output = _run(rules_dir, monkeypatch)
    assert (status, output) == (1, f"no case files in {rules_dir}/tests (*.yaml)\n")


def test_command_fails_when_the_rules_do_not_load(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules that don't load are reported as the loader reports them, and no case runs."""
    _cases(rules_dir, PASSING)
    (rules_dir / "main.yaml").write_text("rules: []\ndefault: redirect\n")
    status, output = _run(rules_dir, monkeypatch)
    assert status == 1
    assert output.endswith("the rules do not load; no case was run\n")
    assert f"{rules_dir}/main.yaml:2:10: error: unknown action 'redirect'" in output


def test_case_files_never_load_as_rules() -> None:
    """The shipped case files sit in rules/tests/, which the rules loader does not read."""
    shipped = load_rules(bundled_rules_dir())
    assert not any("tests" in name for name in shipped.files)


def test_in_rollout_false_holds_whatever_the_pilot_share(tmp_path: Path, settings: Settings) -> None:
    """`in_rollout: false` keeps a case outside every partial rollout; only a full rollout takes it in."""
    cases = tmp_path / "tests"
    cases.mkdir()
    (cases / "c.yaml").write_text(
        "cases:\n  - name: outside the pilot\n    click: {url: 'https://item.taobao.com/item.htm?id=1', "
        "client: qq_android, in_rollout: false}\n    expect: {action: landing, rule: default}\n")
    for share, verdict in ((0, Verdict.PASS), (99, Verdict.PASS), (100, Verdict.FAIL)):
        (tmp_path / "r.yaml").write_text(f"rules:\n  - {{id: pilot, when: {{app: qq, rollout: {share}}}, then: web}}\n"
                                         "default: landing\n")
        rules = load_rules(tmp_path)
        assert [result.verdict for result in run_cases(load_cases(tmp_path), rules, settings, NOW)] == [verdict]
