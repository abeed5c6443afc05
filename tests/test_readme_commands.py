"""The README and the documentation say what happens: every command they show with `$ ` is run here, and its
output compared with what they print under it; the curl answers, the /readyz bodies and the alert table
likewise.

An example is a `$ command` line in a fenced block, its expected output the lines up to the next `$ ` or
the end of the block. Compared where stable: a line that is only `…` stands for any number of lines, `…`
inside a line for any text, and a rules version (12 hex digits) for any version. A `$` example with no
setup below fails the suite: a new example must be run here too, or listed in NOT_RUN with the reason.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests import uas
from tests.servers import Server, debian_tool

ROOT = Path(__file__).resolve().parent.parent
# The README and the documentation site's pages (docs/, mkdocs.yml), read as one text: an example is found
# wherever it is shown.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
ITEM = "https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D123456"

# Examples that need what a test can't have, with the reason.
NOT_RUN = {
    "adlink-router serve --rules https://rules.example.com/adlink/rules.yaml":
        "fetches from a host on the internet (tests/test_remote.py covers the refusal on loopback)",
}


def examples() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of every `$ ` example in the README's fenced blocks."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", README, re.S | re.M):
        current: tuple[str, list[str]] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = (re.sub(r"\s+# .*$", "", line[2:]).strip(), [])
                found.append(current)
            elif current is not None:
                current[1].append(line)
    return found


def _pattern(line: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in line.split("…")]
    return re.compile(".*".join(parts) + r"\Z")


def _versions(line: str) -> str:
    return re.sub(r"\b[0-9a-f]{12}\b", "<version>", line)


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` lines fit `expected` (a line `…` is any number of lines; `…` within one any text)."""
    want = [_versions(line.rstrip()) for line in expected]
    have = [_versions(line.rstrip()) for line in actual]
    while want and not want[-1]:
        want.pop()
    while have and not have[-1]:
        have.pop()

    def fit(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "…":
            return any(fit(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and bool(_pattern(want[i]).match(have[j])) and fit(i + 1, j + 1)

    return fit(0, 0)


def _run(command: str, where: Path) -> list[str]:
    """`command` as a shell runs it in `where`, `python` and `adlink-router` being this environment's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTER_")}
    env |= {"ITEM": ITEM, "PYTHONIOENCODING": "utf-8", "ROUTER_DRAIN_SECONDS": "0"}
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    shell = command.replace("python -m router", f"{sys.executable} -m router")
    done = subprocess.run(["bash", "-c", shell], cwd=where, capture_output=True, text=True, timeout=120, env=env)
    return (done.stdout + done.stderr).splitlines()


# --- what each example needs in its folder ------------------------------------------------------------

SHIPPED_RULES = ROOT / "rules"
BROKEN = """rules:
  - id: ad-1001-app
    when: {advertizer: "1001"}
    then: redirect
default: web
"""
PILOT = "when: {app: wechat, channel: group_chat, rollout: 0}"


def _copy_rules(where: Path, name: str = "rules") -> Path:
    target = where / name
    shutil.copytree(SHIPPED_RULES, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _broken(where: Path) -> None:
    (where / "broken").mkdir()
    (where / "broken" / "main.yaml").write_text(BROKEN, encoding="utf-8")


def _diff(where: Path) -> None:
    """rules/, new-rules/ (the group-chat pilot raised to 100 %) and a real server's output for 200 clicks."""
    _copy_rules(where)
    new = _copy_rules(where, "new-rules")
    text = (new / "default.yaml").read_text(encoding="utf-8")
    (new / "default.yaml").write_text(text.replace(PILOT, PILOT.replace("rollout: 0", "rollout: 100")),
                                      encoding="utf-8")
    server = Server("--rules", str(where / "rules")).wait_ready()
    mix = [(uas.WECHAT_IOS, "&from=groupmessage"), (uas.WECHAT_ANDROID, "&from=singlemessage"),
           (uas.QQ_ANDROID, "&from=groupmessage"), (uas.SAFARI_IOS, "")]
    try:
        with httpx.Client(base_url=server.base) as client:
            for n in range(200):
                ua, extra = mix[n % len(mix)]
                client.get(f"/go?url={quote('https://item.taobao.com/item.htm?id=1', safe='')}{extra}",
                           headers={"user-agent": ua})
    finally:
        (where / "router.log").write_text(server.stop(), encoding="utf-8")


def _my_rules(where: Path) -> None:
    """A catalogue with a new app whose markers include a word every phone browser sends."""
    rules = _copy_rules(where, "my-rules")
    apps = rules / "apps.yaml"
    apps.write_text(apps.read_text(encoding="utf-8").rstrip("\n") + "\n" + (
        "  - id: lemonchat\n    names: {zh-CN: 柠檬聊天, en: LemonChat}\n    markers: [LemonChat, Mobile]\n"
        "    kind: inapp\n    leave: menu\n"), encoding="utf-8")


def _shipped(where: Path) -> None:
    """Nothing: run from the repository's root, as the README's reader does, on the shipped rules."""


SETUPS: dict[str, Callable[[Path], None]] = {
    "adlink-router serve --rules broken/": _broken,
    "python -m router rules check broken/": _broken,
    "python -m router rules diff rules/ new-rules/ --clicks router.log": _diff,
    "python -m router rules check my-rules/": _my_rules,
    'python -m router explain "/go?url=$ITEM&from=groupmessage" --client wechat_ios --format text': _shipped,
    'python -m router explain "/go?url=$ITEM&from=groupmessage" --client wechat_ios --at 2026-11-21T10:00:00+08:00':
        _shipped,
    "python -m router rules test rules": _shipped,
    "python -m router rules matrix rules --at 2026-11-21T10:00:00+08:00": _shipped,
}


def test_every_example_is_run_or_says_why_not() -> None:
    commands = [command for command, _ in examples()]
    assert commands, "no `$ ` examples found in the README"
    missing = [command for command in commands if command not in SETUPS and command not in NOT_RUN]
    assert not missing, f"README examples with no setup in this test: {missing}"


@pytest.mark.parametrize(("command", "expected"), [e for e in examples() if e[0] in SETUPS],
                         ids=[e[0][:60] for e in examples() if e[0] in SETUPS])
def test_the_readme_shows_what_the_command_prints(command: str, expected: list[str], tmp_path: Path) -> None:
    SETUPS[command](tmp_path)
    actual = _run(command, ROOT if SETUPS[command] is _shipped else tmp_path)
    assert matches(expected, actual), "README:\n" + "\n".join(expected) + "\n\nreal:\n" + "\n".join(actual)


# --- the curl answers, /readyz and the alerts --------------------------------------------------------

def _curl_block() -> str:
    return next(block for block in re.findall(r"^```sh\n(.*?)^```", README, re.S | re.M) if "curl -s" in block)


def test_the_four_answers_with_curl() -> None:
    """The quick start's server answers each curl line as the comment under it says."""
    curl = debian_tool("curl", package="curl")
    block = _curl_block().replace("http://127.0.0.1:8000", "http://127.0.0.1:$PORT")
    lines = block.splitlines()
    setup = "\n".join(line for line in lines if re.match(r"^[A-Z_]+=", line))
    server = Server().wait_ready()
    try:
        for n, line in enumerate(lines):
            if not line.startswith("curl "):
                continue
            expected = lines[n + 1].removeprefix("# ").strip()
            script = f"{setup}\n{line.replace('curl ', curl + ' ', 1)}"
            done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                                  env={**os.environ, "PORT": str(server.port)})
            assert done.stdout.strip() == expected, (line, done.stdout, done.stderr)
    finally:
        server.stop()


def test_the_short_link_examples_with_curl(tmp_path: Path) -> None:
    """README "Short links and the API": a token made by the command, a link made through the API, clicked,
    its QR code read back by a real decoder, and a bad link refused; each answer as the comment under it
    says. The server and the command share one database, as the quick start's do (the default file)."""
    curl = debian_tool("curl", package="curl")
    zbarimg = debian_tool("zbarimg", package="zbar-tools")
    block = next(block for block in re.findall(r"^```sh\n(.*?)^```", README, re.S | re.M) if "/api/links" in block)
    setup = "\n".join(line for line in _curl_block().splitlines() if re.match(r"^[A-Z_]+=", line))
    lines = block.replace("http://127.0.0.1:8000", "http://127.0.0.1:$PORT").splitlines()
    steps: list[tuple[str, list[str]]] = []
    for n, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            expected = []
            for following in lines[n + 1:]:
                if not following.startswith("# "):
                    break
                expected.append(following.removeprefix("# "))
            steps.append((line, expected))
    assert len(steps) == 5 and sum(1 for _, expected in steps if expected) == 4
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTER_")}
    env |= {"ROUTER_DATABASE_URL": f"sqlite:///{tmp_path}/links.db", "ROUTER_DRAIN_SECONDS": "0",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess_server(env)
    try:
        script = [setup, f"PORT={server.port}"]
        for index, (command, _) in enumerate(steps):
            command = command.replace("curl ", f"{curl} ", 1).replace("zbarimg ", f"{zbarimg} ", 1)
            command = command.replace(".venv/bin/adlink-router", str(Path(sys.executable).parent / "adlink-router"))
            script += [f"echo '@@@{index}'", command, "echo"]
        done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, env=env)
    finally:
        server.stop()
    outputs = re.split(r"^@@@\d+\n", done.stdout, flags=re.M)[1:]
    assert len(outputs) == len(steps), (done.stdout, done.stderr)
    for (command, expected), output in zip(steps, outputs, strict=True):
        if expected:
            assert matches(expected, output.strip().splitlines()), (command, expected, output, done.stderr)


def subprocess_server(env: dict[str, str]) -> Server:
    """A router started with exactly `env` (its database among it), ready."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Server().wait_ready()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _json_examples(start: str) -> list[dict[str, object]]:
    """The README's JSON bodies that begin with `start`, read (a `…` value stands for anything)."""
    bodies = re.findall(r"^```json\n(.*?)^```", README, re.S | re.M)
    inline = [re.sub(r"\s*\n\s*", " ", body) for body in re.findall(r"`(\{\"status\": [^`]*\})`", README)]
    return [json.loads(body) for body in [*bodies, *inline] if body.lstrip().startswith(start)]


def test_the_readyz_examples_are_what_it_answers(tmp_path: Path) -> None:
    """The public body has the README's fields and no others; the details' fields and `rules_source` too."""
    rules = _copy_rules(tmp_path)
    server = Server("--rules", str(rules)).wait_ready()
    try:
        detailed = httpx.get(f"{server.base}/readyz").json()
        public = httpx.get(f"{server.base}/readyz", headers={"x-forwarded-for": "203.0.113.9"}).json()
    finally:
        server.stop()
    shown = _json_examples('{"status"')
    short = [body for body in shown if set(body) == {"status", "reason"}]
    assert short and all(set(body) == set(public) for body in short)
    assert any(body == {"status": "ready", "reason": re.sub(r"[0-9a-f]{12}", "bb2b10e9f1d2", public["reason"])}
               for body in short)
    long = [body for body in shown if "rules_source" in body]
    assert long and set(long[0]) <= set(detailed) and detailed["rules_source"] == str(rules)
    assert "the shipped rules' full path by default" in " ".join(README.split())


def test_the_alert_table_names_every_alert() -> None:
    """docs/production.md "What to alert on" lists exactly the alerts deploy/alerts.yml defines."""
    groups = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    defined = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    section = re.split(r"^#{2,3} What to alert on$", README, maxsplit=1, flags=re.M)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(Adlink\w+)` \|", section, re.M))
    assert listed == defined


def test_the_kubernetes_bundle_is_a_rule_file_as_the_readme_says() -> None:
    """deploy/router.yaml's bundle URL names a YAML rule file, as README "Rules for a fleet" describes."""
    manifest = (ROOT / "deploy" / "router.yaml").read_text(encoding="utf-8")
    url = re.search(r"ROUTER_RULES_DIR: (\S+)", manifest).group(1)  # type: ignore[union-attr]
    assert url.endswith((".yaml", ".yml")) and "a single rule file in the usual format" in " ".join(README.split())


def test_the_sign_example_prints_the_link_and_names_its_key() -> None:
    """README "Signed ad links": its export and sign lines, run as shown (python being this environment's),
    print the link it shows (the signature aside) and, on stderr, the key id that signed."""
    block = next(body for body in re.findall(r"^```sh\n(.*?)^```", README, re.S | re.M)
                 if "router sign" in body)
    script = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
    script = script.replace(".venv/bin/python -m router", f"{sys.executable} -m router")
    shown = re.search(r"^# (https://\S+)$", block, re.M).group(1)  # type: ignore[union-attr]
    said = re.search(r"^# \(on stderr\) (.+)$", block, re.M).group(1)  # type: ignore[union-attr]
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTER_")}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert matches([shown], [done.stdout.strip()])  # "…" in the README stands for the signature
    assert done.stderr.strip() == said


# --- every example that shows output is run, or says why not -----------------------------------------------

NOT_RUN_MARK = re.compile(r"<!-- example not run: (.+?) -->\n$")


def fenced_blocks() -> list[tuple[str, str, str, str]]:
    """(page, language, body, the text just before it) of every fenced block of the README and the pages."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```([a-z]*)\n(.*?)^```", text, re.S | re.M):
            found.append((page.name, match.group(1), match.group(2), text[max(0, match.start() - 300):match.start()]))
    return found


def shows_output(language: str, body: str) -> bool:
    """A `$ ` command with its output, or a shell block whose command is followed by `# ` lines: what it prints."""
    lines = body.splitlines()
    if any(line.startswith("$ ") for line in lines):
        return True
    return language in ("sh", "bash", "console") and any(
        line.strip() and not line.startswith("#") and not line.endswith("\\") and following.startswith("# ")
        for line, following in itertools.pairwise(lines))


def run_blocks() -> list[str]:
    """The shell blocks the tests above run whole: the four answers, short links and the API, the signed ad link."""
    shell = re.findall(r"^```sh\n(.*?)^```", README, re.S | re.M)
    return [_curl_block(), next(block for block in shell if "/api/links" in block),
            next(block for block in shell if "router sign" in block)]


def test_every_example_that_shows_output_is_run_or_says_why_not() -> None:
    """Every block of the README and the site that shows what a command prints is one a test runs: a block run
    whole (run_blocks), or `$ ` examples with their setup (SETUPS). The few that can't be run here say so
    just before the block (`<!-- example not run: why -->`), and are exactly NOT_RUN."""
    whole = run_blocks()
    marked: set[str] = set()
    counted = 0
    for page, language, body, before in fenced_blocks():
        if not shows_output(language, body):
            continue
        commands = [re.sub(r"\s+# .*$", "", line[2:]).strip() for line in body.splitlines() if line.startswith("$ ")]
        reason = NOT_RUN_MARK.search(before)
        if reason is not None:
            marked.update(commands)
            continue
        if body in whole:
            counted += sum(1 for line in body.splitlines()
                           if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line))
            continue
        missing = [command for command in commands if command not in SETUPS]
        assert commands and not missing, f"{page}: an example no test runs, and no comment says why: {body[:200]}"
        counted += len(commands)
    assert marked == set(NOT_RUN)
    print(f"examples run: {counted}")  # the count the closing of the docs issue reports (pytest -s)
    assert counted >= 15  # the examples found; fewer means the search above broke
