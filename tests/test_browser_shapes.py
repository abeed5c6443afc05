"""router.decision.browser_shapes reads the common browsers' user agents exactly as ua-parser does.

Every shape is held against ua-parser itself on generated variants (versions, models, devices) and on
the user-agent corpus: same families, same version parts, and the same Client out of parse_client as
the ua-parser path gives. Anything outside a template must not be read as one.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from pathlib import Path

import pytest
import ua_parser
from ua_parser import Domain

from router.decision import clients
from router.decision.browser_shapes import read_shape
from router.decision.types import OS, App, Device
from tests import uas

ROOT = Path(__file__).resolve().parent.parent

MODELS = ["K", "SM-S9180", "V2148A", "Pixel 7", "Lenovo TB-X606F", "SM-X710", "MatePad 11", "Redmi Note 12",
          "22081212C", "CPH2413", "ThinkPad X1", "Chromebook", "Coolpad 8297", "KFTRWI", "Nexus 7", "BTV-W09",
          "Nokia 7_2", "HD1900", "moto g power", "A", "SM-F926U", "PMT5887_3G",
          "Lenovo YT3-X50M", "SD4930UR"]


def _variants() -> list[str]:
    rng = random.Random(7)
    uas = []
    for device, os_version, safari in itertools.product(("iPhone", "iPad"), ("12_5_7", "15_8", "17_4_1", "18_6"),
                                                      ("15.6", "17.4.1", "26.0")):
        cpu = "CPU iPhone OS" if device == "iPhone" else "CPU OS"
        mobile = f"{rng.randrange(10, 23)}{rng.choice('ABEFG')}{rng.randrange(1, 9999)}"
        uas.append(f"Mozilla/5.0 ({device}; {cpu} {os_version} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                   f"Gecko) Version/{safari} Mobile/{mobile} Safari/604.1")
        uas.append(f"Mozilla/5.0 ({device}; {cpu} {os_version} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                   f"Gecko) CriOS/{rng.randrange(90, 140)}.0.{rng.randrange(4000, 7000)}.{rng.randrange(200)} "
                   f"Mobile/{mobile} Safari/604.1")
    for android, model, mobile in itertools.product(("8.1.0", "10", "13", "14", "15"), MODELS, ("Mobile ", "")):
        chrome = f"{rng.randrange(90, 140)}.0.{rng.randrange(0, 7000)}.{rng.randrange(0, 200)}"
        uas.append(f"Mozilla/5.0 (Linux; Android {android}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) "
                   f"Chrome/{chrome} {mobile}Safari/537.36")
    platforms = ("Windows NT 10.0; Win64; x64", "Windows NT 10.0", "Windows NT 6.1; WOW64", "Windows NT 6.1",
                 "Macintosh; Intel Mac OS X 10_15_7", "Macintosh; Intel Mac OS X 10_14_6", "X11; Linux x86_64")
    for platform in platforms:
        chrome = f"{rng.randrange(90, 140)}.0.{rng.randrange(0, 7000)}.{rng.randrange(0, 200)}"
        tail = f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome} Safari/537.36"
        uas.append(f"Mozilla/5.0 ({platform}) {tail}")
        uas.append(f"Mozilla/5.0 ({platform}) {tail} Edg/{chrome}")
    for mac, safari in itertools.product(("10_15_7", "10_15_6", "10_14_6"), ("17.1", "16.6.1", "26.0")):
        uas.append(f"Mozilla/5.0 (Macintosh; Intel Mac OS X {mac}) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   f"Version/{safari} Safari/605.1.15")
    for platform, rv in itertools.product(("Windows NT 10.0; Win64; x64", "Windows NT 6.1; WOW64",
                                           "Macintosh; Intel Mac OS X 10.15", "X11; Linux x86_64",
                                           "X11; Ubuntu; Linux x86_64"), ("115.0", "128.0", "133.0")):
        uas.append(f"Mozilla/5.0 ({platform}; rv:{rv}) Gecko/20100101 Firefox/{rv}")
    return uas


VARIANTS = _variants()
PARSER = ua_parser.Parser(ua_parser.regex.Resolver(ua_parser.load_lazy_builtins()))


def _slow_client(ua: str, monkeypatch: pytest.MonkeyPatch) -> clients.Client:
    """parse_client's answer with the shapes switched off: ua-parser and the steps after it."""
    with monkeypatch.context() as patched:
        patched.setattr(clients, "read_shape", lambda _ua: None)
        return clients._BUNDLED._parse(ua)


@pytest.mark.parametrize("ua", VARIANTS)
def test_a_shape_reads_what_ua_parser_reads(ua: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shape = read_shape(ua)
    assert shape is not None, f"not read as a shape: {ua}"
    result = PARSER(ua, Domain.ALL)
    assert result.os is not None and result.user_agent is not None
    assert shape.os == (result.os.family, result.os.major, result.os.minor, result.os.patch)
    browser = result.user_agent
    assert shape.browser == (browser.family, browser.major, browser.minor, browser.patch)
    assert clients._BUNDLED._parse(ua) == _slow_client(ua, monkeypatch)


def test_the_corpus_parses_the_same_with_and_without_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exactly the same Client for a template; for a template with product tokens appended, the same app,
    OS, device and flags (the browser's version may differ: a last token that names a browser gives its
    own, one ua-parser knows of and the router does not keeps the template's)."""
    read = appended = 0
    same = ("app", "os", "os_version", "device", "bot", "mini_program")
    for ua in uas.corpus_user_agents():
        fast, slow = clients._BUNDLED._parse(ua), _slow_client(ua, monkeypatch)
        if read_shape(ua) is not None:
            read += 1
            assert fast == slow, ua
        elif clients._template_with_products(ua) is not None:
            appended += 1
            assert [getattr(fast, name) for name in same] == [getattr(slow, name) for name in same], ua
        else:
            assert fast == slow, ua
    assert read >= 100 and appended >= 10  # the corpus does hold common browsers' user agents, some appended to


def test_a_template_with_made_up_products_is_read_without_ua_parser() -> None:
    """A flood of iPhone Safari's user agent with a counter appended is read by the template, in a process
    where ua-parser's tables are never built; a product naming a bot, or a contact address, is not."""
    script = (
        "from router.decision.clients import parse_client, tables_built\n"
        "from tests import uas\n"
        "clients = {parse_client(uas.SAFARI_IOS + f' r/{n}') for n in range(2000)}\n"
        "print(sorted((c.app.value, c.os.value, c.device.value, c.app_version) for c in clients), tables_built())\n"
        "print(parse_client(uas.CHROME_WINDOWS + ' Core/1.94.202.400 QQBrowser/11.9.5355.400').app_version)\n"
        "print(parse_client(uas.SAFARI_IOS + ' UptimeMonitor/1.0').app.value,"
        " parse_client(uas.SAFARI_IOS + ' Scan/1.0 www.example.com/1').app.value)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.splitlines() == [
        "[('browser', 'ios', 'mobile', (17, 4))] none",  # one Client for them all: Safari's, as the template says
        "(11, 9, 5355)",
        "bot bot",
    ], done.stderr


@pytest.mark.parametrize(
    "ua",
    [
        # A webview, an app's marker, an old Build id, a bot's tail, a Windows version not mapped here.
        "Mozilla/5.0 (Linux; Android 13; V2203A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/111.0.5563.116 "
        "Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 9; SM-G960F Build/PPR1.180610.011) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/74.0.3729.157 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/XHS148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; wv) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 "
        "Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 6.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36 OPR/106.0.0.0",
    ],
)
def test_anything_off_a_template_is_not_a_shape(ua: str) -> None:
    assert read_shape(ua) is None


@pytest.mark.parametrize("model", ["Googlebot", "HarmonyOS", "Weibo", "ZhihuHybrid 1", "UCWEB phone"])
def test_a_model_name_that_carries_a_marker_is_read_the_long_way(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ua = (f"Mozilla/5.0 (Linux; Android 13; {model}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
          "Mobile Safari/537.36")
    assert read_shape(ua) is not None
    client = clients._BUNDLED._parse(ua)
    assert client == _slow_client(ua, monkeypatch)
    assert client.app != App.BROWSER or client.os is OS.HARMONYOS


def test_a_shape_gives_the_whole_client() -> None:
    """A shape is read into its Client directly (tests/test_clients.py checks no tables load for it)."""
    safari = clients._BUNDLED._parse(VARIANTS[0])
    assert (safari.app, safari.os, safari.device, safari.browser) == (App.BROWSER, OS.IOS, Device.MOBILE,
                                                                      "Mobile Safari")
