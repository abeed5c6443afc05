"""`rules test`: cases kept beside the rules, run through the code the server runs.

A rules directory's `tests/` folder holds case files (`*.yaml`). The rules loader reads only the
directory's own files, so case files never load as rules:

    cases:
      - name: a Uni Desk ad clicked in WeChat opens the app
        click: {url: "https://item.taobao.com/item.htm?id=1", client: wechat_ios, channel: ad,
                ad_source: unidesk, advertiser: "1001", at: "2026-11-11T10:00:00+08:00"}
        expect: {action: app, rule: wechat-ad-unidesk-app, location: "taobao://item.taobao.com/item.htm?id=1"}

Each click becomes the request a real tap would send (an `/ad` link signed with the configured keys,
WeChat's `from=` for a chat or Moments share), is read by `router.decision.click.read_click` and decided by
`router.decision.decide.explain`, exactly as the server would. A case ends in one of three verdicts:

- PASS: the answer is what `expect` says;
- FAIL: it is not (the message names what differs and why the expected rule did not match);
- ERROR: the case could not run: a mistake in the case file, or an expected rule id the rules lack.

Case files are read by router.decision.yaml_reader, the reader rule files use: composed into nodes and
walked by hand (nothing is constructed from tags), so every result and every mistake names its `file:line`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import quote, urlencode

from yaml.nodes import Node, SequenceNode

from router.decision.click import WECHAT_FROM, BadClick, read_click
from router.decision.conditions import Rollout
from router.decision.decide import DEFAULT_RULE, explain
from router.decision.known_agents import Corpus, example, load_corpus
from router.decision.named_clients import UnknownClientError, user_agent
from router.decision.rules import RULE_FILE_SUFFIXES, Rule, RuleSet
from router.decision.signing import SigningKeys, sign
from router.decision.types import MAX_TAG_CHARS, OS, Action, Channel, Step, is_tag
from router.decision.yaml_reader import MAX_FILE_BYTES, NodeError, Problem, YamlReader, display_name, is_empty, suggest
from router.policy.replay import parse_time
from router.serve.config import Settings
from router.serve.reload import load_reporting

CASES_DIR = "tests"
BAD_REQUEST = "bad-request"  # the rule name explain and the server's log give a click that can't be read

CASE_KEYS = ("name", "click", "expect")
CLICK_KEYS = ("url", "request", "client", "ua", "channel", "ad_source", "advertiser", "campaign", "at", "visitor",
              "params", "in_rollout", "tags")
EXPECT_KEYS = ("action", "rule", "location", "status", "channel")
_AD_FIELDS = ("ad_source", "advertiser", "campaign")
_SHARED_FROM = {channel: word for word, channel in WECHAT_FROM.items()}
_E = TypeVar("_E", bound=StrEnum)


# --- what a case says ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Click:
    """A click as a case (or the matrix) describes it; `request` builds what would reach the router."""

    url: str = ""
    raw_request: str = ""  # a case's `request:`, used as is
    ua: str = ""
    channel: Channel | None = None
    ad_source: str = ""
    advertiser: str = ""
    campaign: str = ""
    at: datetime | None = None
    visitor: str = ""
    params: tuple[tuple[str, str], ...] = ()
    # What-if: true puts the visitor inside every rollout (tests a pilot before launch), false outside every
    # partial one (a case that must hold whatever a pilot's share); unset: the visitor's sticky buckets.
    in_rollout: bool | None = None
    tags: tuple[str, ...] = ()  # the short link's tags, as a click through /s/<code> carries them

    def request(self, keys: SigningKeys) -> str:
        """Path and query: a signed /ad link for channel ad, WeChat's share parameter for chats and Moments."""
        if self.raw_request:
            return self.raw_request
        fields = {"url": self.url}
        if self.channel is Channel.AD:
            ad = {"src": self.ad_source, "adv": self.advertiser, "cmp": self.campaign}
            path, fields = "/ad", sign({**fields, **ad}, keys)
        else:
            path = "/go"
            if self.channel in _SHARED_FROM:
                fields["from"] = _SHARED_FROM[self.channel]
        return f"{path}?{urlencode([*fields.items(), *self.params], quote_via=quote)}"


@dataclass(frozen=True, slots=True)
class Expect:
    action: Action
    rule: str | None = None
    location: str | None = None
    status: int | None = None
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    file: str
    line: int
    click: Click | None = None  # None (and expect None) when the case has problems
    expect: Expect | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


# --- reading case files -------------------------------------------------------------------------------


class _CaseReader(YamlReader):
    """Walks one case file's nodes. Scalars are read as the text written, so `advertiser: 1001` is "1001"."""

    def __init__(self, file: str, corpus: Corpus | None = None) -> None:
        super().__init__(file, "case files")
        self.corpus = corpus  # the known user agents, for a client named after an app (`lemonchat_android`)

    def user_agent(self, name: str) -> str:
        """A named client's user agent, else one of the known user agents of the app the name says."""
        try:
            return user_agent(name)
        except UnknownClientError as err:
            found = corpus_client(self.corpus, name)
            if found is None:
                if "did you mean" in str(err):
                    raise
                raise UnknownClientError(
                    f"{err}; or `<app>`/`<app>_<os>` for an app of the catalogue, taken from its known user agents "
                    "(user_agents/*.jsonl: add a line labelled with the app, and the OS, to use it)") from None
            return found

    def read(self, text: str) -> list[Case]:
        root = self.compose(text)
        if root is None:
            return [self.file_error(self.problems[-1])]
        if is_empty(root):
            return [self.file_error(self.at(1, 1, "no cases: a case file is a mapping with 'cases:', a list of cases"))]
        try:
            top = self.fields(root, "a case file", ("cases",))
            if "cases" not in top:
                raise NodeError(root, "no 'cases:' in the case file")
            listed = top["cases"]
            if not isinstance(listed, SequenceNode) or not listed.value:
                raise NodeError(listed, "'cases' must be a list of cases, each starting with '- name: …'")
        except NodeError as bad:
            self.problem(bad.node, bad.message)
        if self.problems:
            first = self.problems[0]
            return [Case("", self.file, first.line, problems=tuple(self.problems))]
        return self._unique([self.case(node) for node in listed.value])

    def file_error(self, problem: Problem) -> Case:
        """The whole file as one case that can't run."""
        return Case("", self.file, problem.line, problems=(problem,))

    def _unique(self, cases: list[Case]) -> list[Case]:
        first: dict[str, Case] = {}
        checked = []
        for case in cases:
            if case.name and case.name in first and not case.problems:
                where = first[case.name].where
                problem = Problem(self.file, case.line, 1, f"a second case named {case.name!r} (first at {where})")
                case = Case(case.name, case.file, case.line, problems=(problem,))
            first.setdefault(case.name, case)
            checked.append(case)
        return checked

    def case(self, node: Node) -> Case:
        self.problems = []
        line = node.start_mark.line + 1
        name = ""
        click = expect = None
        try:
            fields = self.fields(node, "a case", CASE_KEYS)
            name = (self.value(fields["name"], "'name'") or "").strip() if "name" in fields else ""
            for required in CASE_KEYS:
                if required not in fields or (required == "name" and not name):
                    self.problem(node, f"the case has no {required!r}")
            if "click" in fields:
                click = self.click(fields["click"])
            if "expect" in fields:
                expect = self.expect(fields["expect"])
        except NodeError as bad:
            self.problem(bad.node, bad.message)
        if self.problems or click is None or expect is None:
            problems = sorted(self.problems, key=lambda problem: (problem.line, problem.column))
            return Case(name, self.file, line, problems=tuple(problems))
        return Case(name, self.file, line, click, expect)

    def value(self, node: Node, what: str) -> str | None:
        """A scalar's text, or None after recording why it is not one."""
        try:
            return self.text(node, what)
        except NodeError as bad:
            self.problem(bad.node, bad.message)
            return None

    def values(self, fields: dict[str, Node], where: str = "") -> dict[str, str]:
        found = {}
        for key, node in fields.items():
            text = self.value(node, f"{where}{key}" if where else f"'{key}'")
            if text is not None:
                found[key] = text
        return found

    def click(self, node: Node) -> Click | None:
        before = len(self.problems)
        try:
            fields = self.fields(node, "'click'", CLICK_KEYS)
        except NodeError as bad:
            self.problem(bad.node, bad.message)
            return None
        values = self.values({key: value for key, value in fields.items() if key != "params"})
        if "url" in fields and "request" in fields:
            self.problem(node, "give the click either 'url' (the link) or 'request' (e.g. '/go?url=…'), not both")
        elif "url" not in fields and "request" not in fields:
            self.problem(node, "the click needs a 'url' (the link) or a 'request' (e.g. '/go?url=…')")
        if "client" in fields and "ua" in fields:
            self.problem(node, "give the click either 'client' (a named client) or 'ua' (a user agent), not both")
        elif "client" not in fields and "ua" not in fields:
            self.problem(node, "the click needs a 'client' (a named client such as wechat_ios; `rules matrix` "
                               "lists them) or a 'ua' (a user agent)")
        ua = values.get("ua", "")
        if "client" in values:
            try:
                ua = self.user_agent(values["client"])
            except UnknownClientError as err:
                self.problem(fields["client"], str(err))
        channel = self.word(fields, values, "channel", Channel)
        if "request" in fields:
            for key in ("channel", *_AD_FIELDS, "params"):
                if key in fields:
                    self.problem(fields[key], f"'{key}' does not go with 'request': write it into the request")
        for key in _AD_FIELDS:
            if key in fields and channel is not Channel.AD:
                self.problem(fields[key], f"'{key}' only applies to 'channel: ad'")
        at = None
        if "at" in values:
            try:
                at = parse_time(values["at"])
            except ValueError as err:
                self.problem(fields["at"], str(err))
        params = self.params(fields["params"], channel) if "params" in fields else ()
        in_rollout = values.get("in_rollout", "")
        if in_rollout not in ("true", "false", ""):
            self.problem(fields["in_rollout"], f"'in_rollout' is true or false, got {in_rollout!r}")
        tags = tuple(tag.strip() for tag in values.get("tags", "").split(",") if tag.strip())
        for tag in tags:
            if not is_tag(tag):
                self.problem(fields["tags"], f"tag {tag!r} is not a tag: 1 to {MAX_TAG_CHARS} of a-z, 0-9 and "
                                             "'-'; write several as 'spring-sale, vip'")
        if len(self.problems) > before:
            return None
        return Click(url=values.get("url", ""), raw_request=values.get("request", ""), ua=ua, channel=channel,
                     ad_source=values.get("ad_source", ""), advertiser=values.get("advertiser", ""),
                     campaign=values.get("campaign", ""), at=at, visitor=values.get("visitor", ""), params=params,
                     in_rollout={"true": True, "false": False}.get(in_rollout), tags=tags)

    def word(self, fields: dict[str, Node], values: dict[str, str], key: str, kind: type[_E]) -> _E | None:
        """values[key] as a member of `kind` (a problem, with a suggestion, when it is none)."""
        word = values.get(key)
        if word is None:
            return None
        choices = [member.value for member in kind]
        if word not in choices:
            self.problem(fields[key], f"unknown {key} {word!r}{suggest(word, choices)}")
            return None
        return kind(word)

    def params(self, node: Node, channel: Channel | None) -> tuple[tuple[str, str], ...]:
        try:
            fields = self.fields(node, "'params'", ())
        except NodeError as bad:
            self.problem(bad.node, bad.message)
            return ()
        # Names the case already sets: giving them again would send them twice (a 400), not override.
        taken = {"url"} | ({"src", "adv", "cmp", "kid", "sig"} if channel is Channel.AD else set())
        if channel in _SHARED_FROM:
            taken.add("from")
        for name in taken & fields.keys():
            self.problem(fields.pop(name), f"params.{name} is already set by the case's url or channel; drop one")
        return tuple(self.values(fields, "params.").items())

    def expect(self, node: Node) -> Expect | None:
        before = len(self.problems)
        try:
            fields = self.fields(node, "'expect'", EXPECT_KEYS)
        except NodeError as bad:
            self.problem(bad.node, bad.message)
            return None
        values = self.values(fields)
        if "action" not in fields and len(self.problems) == before:  # else a misspelt 'action' was named
            self.problem(node, "'expect' needs 'action' (app, web, landing or block)")
        action = self.word(fields, values, "action", Action)
        channel = self.word(fields, values, "channel", Channel)
        status = None
        if "status" in values:
            status = int(values["status"]) if values["status"].isdigit() else 0
            if not 100 <= status <= 599:
                self.problem(fields["status"], f"'status' is an HTTP status code, got {values['status']!r}")
        if len(self.problems) > before or action is None:
            return None
        return Expect(action, values.get("rule"), values.get("location"), status, channel)



def corpus_client(corpus: Corpus | None, name: str) -> str | None:
    """The user agent of a client named `<app>` or `<app>_<os>` from the known user agents (the first labelled
    so, a phone's first): every app the catalogue names can be tested by name once its user agents are known."""
    if corpus is None:
        return None
    app, _, os = name.rpartition("_") if name.rpartition("_")[2] in _OS_WORDS else (name, "", "")
    found = example(corpus, app, os or None)
    return found.ua if found is not None else None


_OS_WORDS = frozenset(os.value for os in OS)


def case_files(rules_dir: Path) -> list[Path]:
    folder = rules_dir / CASES_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in RULE_FILE_SUFFIXES and p.is_file())


def load_cases(rules_dir: str | Path) -> list[Case]:
    """Every case in `rules_dir/tests/*.yaml`, in file order; a case with mistakes carries its problems."""
    cases: list[Case] = []
    corpus = load_corpus(Path(rules_dir))
    for path in case_files(Path(rules_dir)):
        reader = _CaseReader(display_name(path), corpus)
        with path.open("rb") as handle:  # never more than the limit (and one byte to notice) in memory
            text = reader.decode(handle.read(MAX_FILE_BYTES + 1))
        cases.extend(reader.read(text) if text is not None else [reader.file_error(reader.problems[-1])])
    return cases


# --- running cases ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What the router answered a click, as a case compares it."""

    action: Action
    rule: str
    status: int
    location: str | None
    channel: Channel | None  # None when the click was refused before a channel was read
    reason: str = ""
    trace: tuple[Step, ...] = ()


def answer(click: Click, rules: RuleSet, settings: Settings, now: datetime) -> Answer:
    """Decide a click through read_click and explain, as the server and `explain` do."""
    path, _, query = click.request(settings.signing_keys).partition("?")
    try:
        ctx = read_click(path, query, click.ua, at=click.at or now, settings=settings, visitor=click.visitor,
                         apps=rules.apps, tags=click.tags)
    except BadClick as bad:
        return Answer(Action.BLOCK, BAD_REQUEST, bad.status, None, None, bad.message)
    if click.in_rollout is not None:
        ctx = dataclasses.replace(ctx, in_rollout=click.in_rollout)
    decision = explain(rules, ctx)
    return Answer(decision.action, decision.rule, decision.status, decision.location, ctx.channel,
                  decision.reason, decision.trace)


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Result:
    case: Case
    verdict: Verdict
    message: str = ""
    reached: str | None = None  # the rule that decided the click, when it ran

    @property
    def where(self) -> str:
        """The case's file:line, or for a case with mistakes, where the first one is."""
        if self.case.problems:
            first = self.case.problems[0]
            return f"{first.file}:{first.line}"
        return self.case.where

    def __str__(self) -> str:
        name = f" {self.case.name}" if self.case.name else ""
        problems = self.case.problems
        if self.verdict is Verdict.ERROR and len(problems) > 1:
            # One problem per line, as `rules check` writes them (file:line:col: error: …), under the case.
            listed = "".join(f"\n  {problem.labelled()}" for problem in problems)
            return f"{self.verdict} {self.where}{name}: {len(problems)} problems{listed}"
        message = f": {self.message}" if self.message else ""
        return f"{self.verdict} {self.where}{name}{message}"


def run_case(case: Case, rules: RuleSet, settings: Settings, now: datetime) -> Result:
    if case.problems or case.click is None or case.expect is None:
        first, *more = case.problems or (Problem(case.file, case.line, 1, "the case could not be read"),)
        message = "; ".join([first.message, *(f"line {p.line}: {p.message}" for p in more)])
        return Result(case, Verdict.ERROR, message)
    expect = case.expect
    known = [rule.id for rule in rules.rules] + [DEFAULT_RULE, BAD_REQUEST]
    if expect.rule is not None and expect.rule not in known:
        message = f"expected rule {expect.rule!r} is not in the rules{suggest(expect.rule, known)}"
        return Result(case, Verdict.ERROR, message)
    got = answer(case.click, rules, settings, now)
    differences = _differences(expect, got)
    if not differences:
        return Result(case, Verdict.PASS, reached=got.rule)
    return Result(case, Verdict.FAIL, "; ".join(differences), reached=got.rule)


def _differences(expect: Expect, got: Answer) -> list[str]:
    found = []
    answered_otherwise = expect.action is not got.action or expect.rule not in (None, got.rule)
    if answered_otherwise:
        wanted = f"{expect.action}" + (f" ({expect.rule})" if expect.rule else "")
        line = f"expected {wanted}, got {got.action} ({got.rule})"
        if got.rule == BAD_REQUEST:
            line += f": {got.reason}"
        elif expect.rule is not None and expect.rule != got.rule:
            line += _why_not(expect.rule, got.trace)
        found.append(line)
    # A different action brings a different status and location: only say so when the action is right.
    if not answered_otherwise and expect.status is not None and expect.status != got.status:
        found.append(f"expected status {expect.status}, got {got.status}")
    if not answered_otherwise and expect.location is not None and expect.location != got.location:
        found.append(f"expected location {expect.location!r}, got {got.location!r}")
    if expect.channel is not None and expect.channel is not got.channel:
        found.append(f"expected channel {expect.channel}, got {got.channel or 'none (the click was refused)'}")
    return found


def _why_not(rule_id: str, trace: tuple[Step, ...]) -> str:
    for step in trace:
        if step.rule == rule_id:
            return f" — {rule_id} did not match: {step.reason}"
    if rule_id == DEFAULT_RULE:
        return ""
    return f" — {rule_id} was never tried: an earlier rule matched"


def run_cases(cases: Iterable[Case], rules: RuleSet, settings: Settings, now: datetime | None = None) -> list[Result]:
    """Every case's result, in order. Cases without `at` are decided at `now` (default: the current time)."""
    moment = now or datetime.now(UTC)
    return [run_case(case, rules, settings, moment) for case in cases]


_DARK = "at rollout 0, no click reaches it"


@dataclass(frozen=True, slots=True)
class Unreached:
    rule: str
    where: str
    why: str


def unreached(rules: RuleSet, results: Iterable[Result]) -> list[Unreached]:
    """The rules (and the default) that decided none of the cases that ran, with why where it is known."""
    reached = {result.reached for result in results if result.reached}
    missing = []
    for rule in rules.rules:
        if rule.id not in reached:
            why = _DARK if _dark(rule) else "no case reaches it"
            missing.append(Unreached(rule.id, rule.where, why))
    if DEFAULT_RULE not in reached:
        missing.append(Unreached(DEFAULT_RULE, "", "no case falls through to the default"))
    return missing


def _dark(rule: Rule) -> bool:
    """A rule shipped at rollout 0: it can't decide any click until its rollout is raised."""
    return any(isinstance(condition, Rollout) and condition.percent <= 0 for condition in rule.conditions)


def coverage_line(rules: RuleSet, missing: list[Unreached]) -> str:
    """One line: how many rules the cases reached, and whether the ones left are dark (at rollout 0)."""
    rule_ids = {rule.id for rule in rules.rules}
    missed = [item for item in missing if item.rule in rule_ids]
    default_reached = not any(item.rule == DEFAULT_RULE for item in missing)
    total = len(rules.rules)
    line = f"coverage: {total - len(missed)} of {total} rules{' and the default' if default_reached else ''} reached"
    if not default_reached:
        line += "; the default not reached"
    dark = sum(1 for item in missed if item.why == _DARK)
    if dark == len(missed) == 1:
        line += "; the one not reached is at rollout 0, which no click can reach"
    elif dark == len(missed) and dark:
        line += f"; the {dark} not reached are at rollout 0, which no click can reach"
    elif dark:
        line += f"; {dark} of the {len(missed)} not reached {'is' if dark == 1 else 'are'} at rollout 0"
    return line


def summary_line(results: list[Result]) -> str:
    # Never "N passed, N failed" alone on a line: CI tooling reads such lines as a test run's own summary.
    counts = {verdict: sum(1 for result in results if result.verdict is verdict) for verdict in Verdict}
    cases = f"{len(results)} case{'' if len(results) == 1 else 's'}"
    errors = counts[Verdict.ERROR]
    return (f"{cases}: {counts[Verdict.PASS]} passed, {counts[Verdict.FAIL]} failed, "
            f"{errors} error{'' if errors == 1 else 's'}")


# --- the command --------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("test", help="run the cases in DIR/tests/*.yaml against the rules in DIR")
    parser.add_argument("directory", nargs="?",
                        help="rules directory (default: $ROUTER_RULES_DIR or the shipped rules)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: IO[str]) -> int:
    try:
        settings = Settings.from_env(rules_dir=args.directory, serving=False)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rules = load_reporting(settings, lambda line: out.write(f"{line}\n"))
    if rules is None:
        out.write("the rules do not load; no case was run\n")
        return 1
    cases = load_cases(settings.rules_dir)
    if not cases:
        out.write(f"no case files in {settings.rules_dir / CASES_DIR} (*.yaml)\n")
        return 1
    results = run_cases(cases, rules, settings)
    for result in results:
        out.write(f"{result}\n")
    missing = unreached(rules, results)
    for item in missing:
        out.write(f"not reached: {item.rule}{f' ({item.where})' if item.where else ''}: {item.why}\n")
    out.write(coverage_line(rules, missing) + "\n")
    out.write(summary_line(results) + "\n")
    return 0 if all(result.verdict is Verdict.PASS for result in results) else 1
