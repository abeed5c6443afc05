"""Named clients: a short name for a real-shaped user agent of each kind of place a tap happens in.

Rule test cases say `client: wechat_ios` instead of pasting a user agent, and the decision matrix uses
the same table for its rows, grouped as people think of them. Each user agent is written in the shape
the app is documented to send (docs/wechat-and-taobao.md, "Signals at click time"); a test checks that each
one parses to the app, OS and device its name says.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


class UnknownClientError(ValueError):
    """A client name that is not in the table; the message suggests the closest one."""


@dataclass(frozen=True, slots=True)
class NamedClient:
    name: str
    group: str  # one of GROUPS: where the matrix lists it
    ua: str


GROUPS = ("WeChat", "other in-app", "browsers", "desktop", "bots")

_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS {} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
_ANDROID_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android {}; {} Build/{}; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/{} Mobile Safari/537.36"
)

_TABLE = (
    # --- WeChat on phones ---
    NamedClient("wechat_ios", "WeChat", _IPHONE.format("17_5_1")
                + " Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"),
    NamedClient("wechat_android", "WeChat", _ANDROID_WEBVIEW.format("14", "23013RK75C", "UKQ1.230804.001",
                                                                    "122.0.6261.120")
                + " XWEB/1220099 MMWEBSDK/20240301 MMWEBID/5521 MicroMessenger/8.0.48.2580(0x28003036)"
                " WeChat/arm64 Weixin NetType/5G Language/zh_CN ABI/arm64"),
    NamedClient("wechat_miniprogram", "WeChat", _IPHONE.format("17_5_1")
                + " Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
                " miniProgram/wx51c3a9d2e04f7b68"),
    # --- other apps' in-app browsers, and Taobao itself ---
    NamedClient("wecom_ios", "other in-app", _IPHONE.format("17_4")
                + " Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh ColorScheme/Light"),
    NamedClient("qq_android", "other in-app",
                "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, "
                "like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/6.2 TBS/047205 Mobile Safari/537.36 "
                "V1_AND_SQ_9.0.20_5844_YYB_D QQ/9.0.20.14335 NetType/WIFI WebP/0.3.0 AppId/537212064"),
    NamedClient("weibo_ios", "other in-app", _IPHONE.format("17_3")
                + " Mobile/15E148 Weibo (iPhone16,1__weibo__14.2.2__iphone__os17.3)"),
    NamedClient("alipay_android", "other in-app",
                "Mozilla/5.0 (Linux; U; Android 14; zh-CN; 2311DRK48C Build/UP1A.230905.011) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.65 Mobile Safari/537.36 "
                "UCBS/3.22.2.65_240304 NebulaSDK/1.8.100112 Nebula AlipayDefined(nt:WIFI,ws:412|0|2.625) "
                "AliApp(AP/10.5.96.8000) AlipayClient/10.5.96.8000"),
    NamedClient("dingtalk_ios", "other in-app", _IPHONE.format("17_2")
                + " Mobile/15E148 AliApp(DingTalk/7.5.10) com.laiwang.DingTalk/31243211 Channel/201200"
                " language/zh-Hans-CN WK"),
    NamedClient("douyin_android", "other in-app", _ANDROID_WEBVIEW.format("13", "22081212C", "TKQ1.220829.002",
                                                                          "114.0.5735.196")
                + " aweme_290100 JsSdk/1.0 NetType/WIFI Channel/douyin_xiaomi app_version/29.1.0"
                " ByteLocale/zh-CN Region/CN AppSkin/white AppTheme/light BytedanceWebview/d8a21c6"),
    NamedClient("baidu_android", "other in-app", _ANDROID_WEBVIEW.format("12", "PGBM10", "SP1A.210812.016",
                                                                         "97.0.4692.98")
                + " lite baiduboxapp/13.50.0.10 (Baidu; P1 12) NABar/1.0"),
    NamedClient("taobao_ios", "other in-app", _IPHONE.format("17_5")
                + " Mobile/15E148 AliApp(TB/10.35.10) WindVane/8.7.2 UT4Aplus/0.0.4 1179x2556 WK"),
    # --- phones' own browsers ---
    NamedClient("safari_ios", "browsers", _IPHONE.format("17_5")
                + " Version/17.5 Mobile/15E148 Safari/604.1"),
    NamedClient("chrome_android", "browsers",
                "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/125.0.6422.53 Mobile Safari/537.36"),
    NamedClient("huawei_browser_harmonyos", "browsers",
                "Mozilla/5.0 (Phone; OpenHarmony 5.0; HarmonyOS 5.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.3.300"),
    # QQ Browser is a browser: MQQBrowser without QQ/<version> (the trap in router.decision.clients).
    NamedClient("qq_browser_android", "browsers",
                "Mozilla/5.0 (Linux; U; Android 13; zh-cn; PHB110 Build/TP1A.220905.001) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/14.8 Mobile Safari/537.36"),
    # --- desktops, desktop WeChat included ---
    NamedClient("chrome_windows", "desktop",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/125.0.0.0 Safari/537.36"),
    NamedClient("safari_mac", "desktop",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "Version/17.5 Safari/605.1.15"),
    NamedClient("wechat_windows", "desktop",
                "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/101.0.4951.64 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) "
                "WindowsWechat(0x63090b19) XWEB/11159"),
    # Mac WeChat also says WindowsWechat.
    NamedClient("wechat_mac", "desktop",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.8(0x13080810) Safari/605.1.15 NetType/WIFI "
                "WindowsWechat"),
    # --- crawlers and link previews ---
    NamedClient("googlebot", "bots", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    NamedClient("facebook_preview", "bots",
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
)

CLIENTS: dict[str, NamedClient] = {client.name: client for client in _TABLE}
"""Every named client, by name, in matrix order (grouped as GROUPS)."""


def user_agent(name: str) -> str:
    """The user agent of a named client, or UnknownClientError saying which names exist."""
    client = CLIENTS.get(name)
    if client is None:
        close = difflib.get_close_matches(name, list(CLIENTS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(CLIENTS)}"
        raise UnknownClientError(f"unknown client {name!r}; {hint}")
    return client.ua
