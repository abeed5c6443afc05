"""router.decision.wechat_shapes reads WeChat's user agents exactly as the long way does.

Every template is held against the long way (parse_client with the WeChat shapes switched off) on
generated variants (models that are phones, pads and PCs, firmware builds, versions, iPhone and iPad),
on parentheses that carry another app's or a bot's marker, and on the user-agent corpus: the same
Client every time. Anything off a template must not be read as one.
"""

from __future__ import annotations

import itertools
import random

import pytest

from router.decision import clients
from router.decision.types import OS, App, Client, Device
from router.decision.wechat_shapes import read_wechat
from tests import uas

# Phones (a foldable's code too), pads (by name, by Samsung's SM-T/SM-X, by Huawei's Wi-Fi-only -W09, by a
# maker's pad-line code), PCs, an e-reader, and names that only look like something.
MODELS = ["V2148A", "PJA110", "SM-S9180", "22081212C", "Pixel 7", "Lenovo TB-X606F", "SM-X710", "MatePad 11",
          "BTV-W09", "HUAWEI MRX-W09", "ThinkPad X1", "Chromebook", "Coolpad 8297", "KFTRWI", "Nexus 7", "Kindle",
          "Redmi Note 12", "moto g power", "A", "ROBOT 1", "CUBOT P30", "SM-F926U", "PMT5887_3G",
          "Lenovo YT3-X50M"]
BUILDS = ["TP1A.220624.014", "HUAWEIMRX-W09", "UKQ1.230924.001", "N2G47H"]


def _android(android: str, model: str, build: str, rng: random.Random, *, order: int = 0) -> str:
    xweb = f"XWEB/{rng.randrange(1100000, 1300000)} MMWEBSDK/2024{rng.randrange(1000, 1231)}"
    middle = f"Mobile Safari/537.36 {xweb}" if order == 0 else f"{xweb} Mobile Safari/537.36"
    return (f"Mozilla/5.0 (Linux; Android {android}; {model} Build/{build}; wv) AppleWebKit/537.36 (KHTML, like "
            f"Gecko) Version/4.0 Chrome/{rng.randrange(86, 140)}.0.{rng.randrange(0, 7000)}.{rng.randrange(200)} "
            f"{middle} MMWEBID/{rng.randrange(10000)} MicroMessenger/8.0.{rng.randrange(30, 60)}."
            f"{rng.randrange(2000, 2800)}(0x{rng.randrange(0x28000000, 0x28010000):08X})"
            f"{rng.choice(['', ' Process/toolsmp', ' Process/tools'])} "
            f"WeChat/{rng.choice(['arm64', 'arm32'])} Weixin NetType/{rng.choice(['WIFI', '4G', '5G'])} "
            f"Language/{rng.choice(['zh_CN', 'zh_TW', 'en_US'])}{rng.choice([' ABI/arm64', ''])}")


def _variants() -> list[str]:
    rng = random.Random(11)
    variants = [_android(android, model, build, rng, order=n % 2)
                for n, (android, model, build) in enumerate(itertools.product(("8.1.0", "10", "13", "15"), MODELS,
                                                                               BUILDS))]
    for device, os_version in itertools.product(("iPhone", "iPad"), ("12_5_7", "15_8", "17_4_1", "18_6")):
        cpu = "CPU iPhone OS" if device == "iPhone" else "CPU OS"
        variants.append(
            f"Mozilla/5.0 ({device}; {cpu} {os_version} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Mobile/{rng.randrange(10, 23)}{rng.choice('ABEFG')}{rng.randrange(1, 9999)} MicroMessenger/8.0."
            f"{rng.randrange(30, 60)}(0x{rng.randrange(0x18000000, 0x18010000):08x}) NetType/"
            f"{rng.choice(['WIFI', '4G'])} Language/zh_CN")
    return variants


VARIANTS = _variants()


def _long_way(ua: str, monkeypatch: pytest.MonkeyPatch) -> Client:
    """parse_client's answer with the WeChat shapes switched off."""
    with monkeypatch.context() as patched:
        patched.setattr(clients, "read_wechat", lambda _ua: None)
        return clients._BUNDLED._parse(ua)


@pytest.mark.parametrize("ua", VARIANTS)
def test_a_shape_reads_what_the_long_way_reads(ua: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_wechat(ua) is not None, f"not read as a WeChat shape: {ua}"
    assert clients._BUNDLED._parse(ua) == _long_way(ua, monkeypatch)


def test_the_variants_hold_phones_pads_and_pcs() -> None:
    """The generated variants do test the device verdicts, not only phones."""
    devices = {clients._BUNDLED._parse(ua).device for ua in VARIANTS}
    assert devices == {Device.MOBILE, Device.TABLET, Device.DESKTOP}


@pytest.mark.parametrize(
    "model",
    ["wxwork/4.1", "Googlebot", "WeChat bot", "HarmonyOS", "Hmos/1", "miniProgram", "WindowsWechat", "MacWechat",
     "Weibo", "ZhihuHybrid 1", "Kwai/11 phone", "AlipayClient/10", "QQ/9.0", "Pad/APad", "aweme_26.1", "DingTalk/7"],
)
def test_a_parenthesis_that_carries_a_marker_is_read_the_long_way(model: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ua = uas.WECHAT_ANDROID.replace("V2148A", model)
    assert read_wechat(ua) is not None
    client = clients._BUNDLED._parse(ua)
    assert client == _long_way(ua, monkeypatch)
    parenthesis = read_wechat(ua).parenthesis  # type: ignore[union-attr]
    assert clients._BUNDLED._parenthesis_device(parenthesis) == clients._MARKED or client.device is Device.TABLET


def test_the_corpus_parses_the_same_with_and_without_wechat_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    read = 0
    for ua in uas.corpus_user_agents():
        if read_wechat(ua) is not None:
            read += 1
        assert clients._BUNDLED._parse(ua) == _long_way(ua, monkeypatch), ua
    assert read >= 1  # the corpus holds a current WeChat user agent


@pytest.mark.parametrize(
    "ua",
    [
        # A tablet's own words, a mini program's process, the old TBS webview, a token more, a space more,
        # an unknown network type, a lone surrogate, an iPod, desktop WeChat.
        uas.WECHAT_ANDROID.replace("Mobile Safari", "Safari").replace("Weixin", "Weixin Android Tablet"),
        uas.WECHAT_ANDROID.replace("WeChat/arm64", "Process/appbrand0 WeChat/arm64"),
        uas.WECHAT_ANDROID.replace("XWEB/1160065 MMWEBSDK/20231202", "MQQBrowser/6.2 TBS/045913"),
        uas.WECHAT_ANDROID.replace("Weixin", "Weixin miniProgram"),
        uas.WECHAT_ANDROID + " ",
        uas.WECHAT_ANDROID.replace("NetType/WIFI", "NetType/kindle"),
        uas.WECHAT_ANDROID.replace("V2148A", "V2148A\udcff"),
        uas.WECHAT_IOS.replace("iPhone;", "iPod touch;"),
        uas.WECHAT_IOS + " miniProgram",
        uas.WECHAT_WINDOWS,
        uas.WECHAT_MAC,
    ],
)
def test_anything_off_a_template_is_not_a_shape(ua: str) -> None:
    assert read_wechat(ua) is None


def test_a_shape_gives_the_whole_client() -> None:
    android = clients._BUNDLED._parse(uas.WECHAT_ANDROID)
    assert android == Client(App.WECHAT, (8, 0, 47, 2560), OS.ANDROID, (13,), Device.MOBILE, False)
    ipad = clients._BUNDLED._parse(VARIANTS[-1])
    assert (ipad.app, ipad.os, ipad.os_version, ipad.device) == (App.WECHAT, OS.IOS, (18, 6), Device.TABLET)
