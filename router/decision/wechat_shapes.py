"""The exact user-agent shapes of WeChat's in-app browser on iPhone, iPad and Android phones, read whole.

WeChat is most of the clicks a Taobao link router sees, and nearly every WeChat user agent is new: the
Android one carries a per-install id (`MMWEBID/`), the webview's build (`XWEB/`), the firmware's build
id and the model, the iOS one a build code. Read the long way (router.decision.clients: a dozen marker
tests over 300 characters, then the OS and the device) that costs several times what one anchored regex
does: matched whole against the template below, it reads the app version, the OS and its version
(benchmarks/bench_decide.py measures it: docs/speed.md).

Each shape is matched whole (`fullmatch`) and every token outside the Android parenthesis is fixed
text, a number, or one of a few known words (`NetType/WIFI`, `Language/zh_CN`, `WeChat/arm64`): nothing
in them can hold another app's marker, a bot's word, a pad's or PC's model name, "miniProgram" or a
desktop WeChat's name. A tablet's own words (`Android Tablet`, no `Mobile`), a mini program's process,
an old TBS webview or any token more or less is not this shape and goes the long way.
The only free text is the Android parenthesis (model and firmware build): the caller reads it as it
reads any user agent and keeps its verdict per parenthesis (models and builds repeat across millions of
phones). tests/test_wechat_shapes.py holds every shape against the long way on generated variants,
hostile models and the user-agent corpus.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["WECHAT_TEMPLATE_TEXTS", "WeChatShape", "read_wechat"]


class WeChatShape(NamedTuple):
    """A WeChat user agent's parts as written (the caller keeps what it builds from them per spelling)."""

    os: str  # "iOS" or "Android"
    os_version: str  # "17_4_1" on iOS, "13" or "8.1.0" on Android
    app_version: str  # "8.0.47" or "8.0.47.2580"
    device: str  # "iPhone" or "iPad" on iOS; "" on Android, whose parenthesis decides
    parenthesis: str = ""  # Android's "Linux; Android 13; <model> Build/<build>; wv": the caller checks it


_APP_VERSION = r"MicroMessenger/(\d{1,2}(?:\.\d{1,5}){1,3})\(0x[0-9A-Fa-f]{8}\)"
_NET_AND_LANGUAGE = r" NetType/(?:WIFI|[2-5]G) Language/[a-z][a-z]_[A-Z][A-Z]"
_ARCH = r"(?:arm64|arm32|x86|x86_64)"

_IOS = re.compile(
    r"Mozilla/5\.0 \((iPhone|iPad); CPU (?:iPhone )?OS (\d{1,2}(?:_\d{1,2}){1,2}) like Mac OS X\) "
    r"AppleWebKit/605\.1\.15 \(KHTML, like Gecko\) Mobile/\d\d[A-Z]\d{1,4} " + _APP_VERSION + _NET_AND_LANGUAGE
)
# XWEB, the webview WeChat has shipped on Android since 2021 ("Mobile Safari" before or after its tokens).
# The model and the build are the free text: printable ASCII but the parenthesis' own delimiters.
_FREE = r"[\x20-\x27\x2a-\x3a\x3c-\x7e]"
_ANDROID = re.compile(
    r"Mozilla/5\.0 \((Linux; Android (\d{1,2}(?:\.\d{1,2}){0,2}); " + _FREE + r"+? Build/" + _FREE + r"+; wv)\) "
    r"AppleWebKit/537\.36 \(KHTML, like Gecko\) Version/4\.0 Chrome/\d{1,3}(?:\.\d{1,5}){3} "
    r"(?:Mobile Safari/537\.36 XWEB/\d{1,8} MMWEBSDK/\d{8}|XWEB/\d{1,8} MMWEBSDK/\d{8} Mobile Safari/537\.36) "
    r"MMWEBID/\d{1,5} " + _APP_VERSION + r"(?: Process/(?:tools|toolsmp))? WeChat/" + _ARCH + r" Weixin"
    + _NET_AND_LANGUAGE + r"(?: ABI/" + _ARCH + r")?"
)


def read_wechat(ua: str) -> WeChatShape | None:
    """The parts of a WeChat user agent on the templates above, or None when `ua` is not one."""
    head = ua[13:17]
    if head == "Linu":
        m = _ANDROID.fullmatch(ua)
        if m is None:
            return None
        parenthesis, os_version, app_version = m.groups()
        return WeChatShape("Android", os_version, app_version, "", parenthesis)
    if head == "iPho" or head == "iPad":
        m = _IOS.fullmatch(ua)
        if m is None:
            return None
        device, os_version, app_version = m.groups()
        return WeChatShape("iOS", os_version, app_version, device)
    return None


# One user agent per alternative the templates allow, each read by them (tests/test_wechat_shapes.py), with
# the free text (Android's parenthesis) as "\x00": what router.decision.clients checks a catalogue's markers
# against before it trusts the templates (a marker that could occur in their fixed text turns them off).
_ANDROID_HEAD = ("Mozilla/5.0 (\x00) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 ")
WECHAT_TEMPLATE_TEXTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/4G Language/en_US",
    _ANDROID_HEAD + "Mobile Safari/537.36 XWEB/1110017 MMWEBSDK/20231002 MMWEBID/2280 "
    "MicroMessenger/8.0.43.2480(0x28002B51) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
    _ANDROID_HEAD + "XWEB/1110017 MMWEBSDK/20231002 Mobile Safari/537.36 MMWEBID/2280 "
    "MicroMessenger/8.0.43.2480(0x28002B51) Process/toolsmp WeChat/arm32 Weixin NetType/5G Language/zh_TW",
    _ANDROID_HEAD + "Mobile Safari/537.36 XWEB/1110017 MMWEBSDK/20231002 MMWEBID/2280 "
    "MicroMessenger/8.0.43.2480(0x28002B51) Process/tools WeChat/x86_64 Weixin NetType/3G Language/zh_CN ABI/x86",
)
