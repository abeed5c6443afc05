"""router.decision.clients: User-Agent -> Client.

The table is the contract: one real-shaped UA per row (written for these tests,
in the shapes each app is documented to send) and every field the router
decides on. os_version is None where it is not worth pinning.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.decision import clients, ua_tables
from router.decision.clients import MAX_UA_LENGTH, cache_clear, cache_info, parse_client, parse_version
from router.decision.types import OS, App, Client, Device, Version
from router.decision.ua_tables import FastUserAgent

W, Q, WC = App.WECHAT, "qq", App.WECOM
IOS, AND, HOS, WIN, MAC, LNX = OS.IOS, OS.ANDROID, OS.HARMONYOS, OS.WINDOWS, OS.MACOS, OS.LINUX
MOB, TAB, DESK = Device.MOBILE, Device.TABLET, Device.DESKTOP

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
ANDROID_WV = (
    "Mozilla/5.0 (Linux; Android {v}; {model} Build/TP1A.220905.001; wv) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36"
)


@dataclass(frozen=True)
class Want:
    app: App
    app_version: Version
    os: OS
    os_version: Version | None
    device: Device
    bot: bool = False
    mini_program: bool = False


CASES: list[tuple[str, str, Want]] = [
    # --- WeChat ---
    (
        "wechat_ios",
        IPHONE.format(v="17_1_2")
        + " Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/WIFI Language/zh_CN",
        Want(W, (8, 0, 44), IOS, (17, 1, 2), MOB),
    ),
    (
        "wechat_ios_old_hex_suffix",
        IPHONE.format(v="14_4")
        + " Mobile/15E148 MicroMessenger/8.0.7(0x18000722) NetType/WIFI Language/zh_CN",
        Want(W, (8, 0, 7), IOS, (14, 4), MOB),
    ),
    (
        "wechat_android_xweb",
        ANDROID_WV.format(v="13", model="PGEM10")
        + " XWEB/1110017 MMWEBSDK/20231002 MMWEBID/6120 MicroMessenger/8.0.43.2480(0x28002B51) WeChat/arm64"
        " Weixin NetType/5G Language/zh_CN ABI/arm64",
        Want(W, (8, 0, 43, 2480), AND, (13,), MOB),
    ),
    (
        "wechat_ipad",
        "Mozilla/5.0 (iPad; CPU OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 MicroMessenger/8.0.40(0x1800282a) NetType/WIFI Language/zh_CN",
        Want(W, (8, 0, 40), IOS, (16, 5), TAB),
    ),
    (
        "wechat_windows",
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 "
        "Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x6309092b) "
        "XWEB/8555",
        Want(W, (7, 0, 20, 1781), WIN, (10,), DESK),
    ),
    (
        # The trap: Mac WeChat also says WindowsWechat.
        "wechat_mac_says_windows_too",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.7(0x13080710) Safari/605.1.15 NetworkType/WIFI "
        "WindowsWechat(0x63090819)",
        Want(W, (6, 8, 0), MAC, (10, 15, 7), DESK),
    ),
    (
        "wechat_windows_without_micromessenger",
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 "
        "Safari/537.36 NetType/WIFI WindowsWechat(0x63090a13) XWEB/9129 Flue",
        Want(W, (), WIN, (10,), DESK),
    ),
    (
        "wechat_mini_program_ios",
        IPHONE.format(v="16_6")
        + " Mobile/15E148 MicroMessenger/8.0.42(0x18002a2f) NetType/4G Language/zh_CN miniProgram/wx1234abcd",
        Want(W, (8, 0, 42), IOS, (16, 6), MOB, mini_program=True),
    ),
    (
        "wechat_mini_program_android",
        ANDROID_WV.format(v="12", model="M2102K1C")
        + " XWEB/5075 MMWEBSDK/20230701 MMWEBID/1234 MicroMessenger/8.0.40.2420(0x28002837) WeChat/arm64 "
        "Weixin NetType/WIFI Language/zh_CN ABI/arm64 MiniProgramEnv/android",
        Want(W, (8, 0, 40, 2420), AND, (12,), MOB, mini_program=True),
    ),
    (
        "wechat_miniprogramhtmlwebview",
        IPHONE.format(v="15_0")
        + " Mobile/15E148 MicroMessenger/8.0.16(0x18001036) NetType/WIFI Language/zh_CN "
        "miniprogramhtmlwebview",
        Want(W, (8, 0, 16), IOS, (15, 0), MOB, mini_program=True),
    ),
    # --- WeCom: wxwork wins over its fake MicroMessenger/7.0.1 ---
    (
        "wecom_ios",
        IPHONE.format(v="16_3")
        + " Mobile/15E148 wxwork/4.1.16 MicroMessenger/7.0.1 Language/zh ColorScheme/Light",
        Want(WC, (4, 1, 16), IOS, (16, 3), MOB),
    ),
    (
        "wecom_android",
        ANDROID_WV.format(v="11", model="V2055A")
        + " wxwork/4.1.13 ColorScheme/Light MicroMessenger/7.0.1 NetType/WIFI Language/zh Lang/zh ABI/arm64",
        Want(WC, (4, 1, 13), AND, (11,), MOB),
    ),
    (
        "wecom_miniprogram_is_not_wechat",
        IPHONE.format(v="16_3") + " Mobile/15E148 wxwork/4.1.16 MicroMessenger/7.0.1 miniProgram",
        Want(WC, (4, 1, 16), IOS, (16, 3), MOB),
    ),
    # --- QQ vs QQ Browser ---
    (
        "qq_ios",
        IPHONE.format(v="16_6")
        + " Mobile/15E148 QQ/8.9.75.621 V1_IPH_SQ_8.9.75_1_APP_A Pixel/1170 MiniAppEnable SimpleUISwitch/0 "
        "QQTheme/1000 Core/WKWebView Device/Apple(iPhone 13) NetType/WIFI QBWebViewType/1 WKType/1",
        Want(Q, (8, 9, 75, 621), IOS, (16, 6), MOB),
    ),
    (
        "qq_android_with_mqqbrowser",
        "Mozilla/5.0 (Linux; Android 13; PHK110 Build/SKQ1.221119.001; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/98.0.4758.102 MQQBrowser/6.2 TBS/046805 Mobile Safari/537.36 "
        "V1_AND_SQ_8.9.28_3700_YYB_D "
        "A_8092800 QQ/8.9.28.10155 NetType/WIFI WebP/0.3.0 AppId/537155547 Pixel/1080 QQTheme/1000",
        Want(Q, (8, 9, 28, 10155), AND, (13,), MOB),
    ),
    (
        "qq_browser_app_alone",
        "Mozilla/5.0 (Linux; U; Android 12; zh-cn; PFUM10 Build/SKQ1.211113.001) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/14.1 Mobile Safari/537.36 COVC/046805",
        Want(App.BROWSER, (14, 1), AND, (12,), MOB),
    ),
    (
        "qq_browser_desktop_is_not_qq",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/94.0.4606.71 Safari/537.36 Core/1.94.202.400 QQBrowser/11.9.5355.400",
        Want(App.BROWSER, (11, 9, 5355), WIN, (10,), DESK),
    ),
    # --- Weibo, Alipay, DingTalk, Taobao ---
    (
        "weibo_ios",
        IPHONE.format(v="16_3") + " Mobile/15E148 Weibo (iPhone14,5__weibo__13.6.0__iphone__os16.3)",
        Want("weibo", (13, 6, 0), IOS, (16, 3), MOB),
    ),
    (
        "weibo_android",
        ANDROID_WV.format(v="12", model="NOH-AN00")
        + " Weibo (HUAWEI-NOH-AN00__weibo__13.6.2__android__android12)",
        Want("weibo", (13, 6, 2), AND, (12,), MOB),
    ),
    (
        "alipay_ios_has_aliapp_too",
        IPHONE.format(v="17_0") + " Mobile/15E148 Ariver/1.1.0 AliApp(AP/10.5.30.6000) Nebula WK RVKType(0) "
        "AlipayDefined(nt:WIFI,ws:390|780|3.0) AlipayClient/10.5.30.6000 Language/zh-Hans Region/CN "
        "NebulaX/1.0.0",
        Want("alipay", (10, 5, 30, 6000), IOS, (17, 0), MOB),
    ),
    (
        "dingtalk_ios_aliapp",
        IPHONE.format(v="16_5")
        + " Mobile/15E148 AliApp(DingTalk/7.0.40) com.laiwang.DingTalk/31000000 Channel/201200 "
        "language/zh-Hans-CN UT4Aplus/0.0.6 WK",
        Want("dingtalk", (7, 0, 40), IOS, (16, 5), MOB),
    ),
    (
        "dingtalk_android_windvane",
        ANDROID_WV.format(v="12", model="V2172A")
        + " AliApp(DingTalk/7.5.0) com.alibaba.android.rimet/34000000 Channel/227200 language/zh-CN "
        "abi/64 UT4Aplus/0.2.25 colorScheme/light WindVane/8.5.0",
        Want("dingtalk", (7, 5, 0), AND, (12,), MOB),
    ),
    (
        "taobao_ios",
        IPHONE.format(v="17_1")
        + " Mobile/15E148 AliApp(TB/10.28.10) UT4Aplus/0.2.29 WindVane/8.5.0 1170x2532 WK",
        Want(App.TAOBAO, (10, 28, 10), IOS, (17, 1), MOB),
    ),
    (
        "tmall_windvane_only",
        IPHONE.format(v="17_1") + " Mobile/15E148 AliApp(TM/15.10.0) UT4Aplus/0.2.29 WindVane/8.5.0 WK",
        Want(App.TMALL, (15, 10, 0), IOS, (17, 1), MOB),
    ),
    # --- Douyin, and its ByteDance cousin Toutiao ---
    (
        "douyin_ios",
        IPHONE.format(v="16_2")
        + " Mobile/15E148 aweme_26.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/zh Region/CN "
        "AppTheme/light WKWebView/1 BytedanceWebview/d8a21c6",
        Want(App.DOUYIN, (26, 1, 0), IOS, (16, 2), MOB),
    ),
    (
        "douyin_android_build_code",
        ANDROID_WV.format(v="12", model="V2172A")
        + " aweme_260100 JsSdk/1.0 NetType/WIFI Channel/vivo_1128_64 app_version/26.1.0 ByteLocale/zh-CN "
        "Region/CN AppSkin/white AppTheme/light BytedanceWebview/d8a21c6 WebView/075113004008",
        Want(App.DOUYIN, (26, 1, 0), AND, (12,), MOB),
    ),
    (
        "toutiao_is_not_douyin",
        IPHONE.format(v="16_6")
        + " Mobile/15E148 NewsArticle/9.3.2.47 JsSdk/2.0 NetType/WIFI (News 9.3.2 16.6) "
        "BytedanceWebview/d8a21c6",
        Want("toutiao", (9, 3, 2, 47), IOS, (16, 6), MOB),
    ),
    # --- other in-app webviews ---
    (
        "baidu_app",
        IPHONE.format(v="16_6")
        + " Mobile/15E148 SP-engine/2.78.0 main%2F1.0 baiduboxapp/13.42.0.10 (Baidu; P2 16.6) NABar/1.0",
        Want("baidu", (13, 42, 0, 10), IOS, (16, 6), MOB),
    ),
    (
        "instagram_ios",
        IPHONE.format(v="17_1")
        + " Mobile/15E148 Instagram 309.0.0.28.112 (iPhone14,2; iOS 17_1; zh_CN; zh-Hans; scale=3.00)",
        Want(App.OTHER_INAPP, (), IOS, (17, 1), MOB),
    ),
    (
        "android_generic_webview",
        ANDROID_WV.format(v="13", model="SM-S9180"),
        Want(App.OTHER_INAPP, (), AND, (13,), MOB),
    ),
    (
        "ios_wkwebview_no_safari_token",
        IPHONE.format(v="17_1") + " Mobile/15E148",
        Want(App.OTHER_INAPP, (), IOS, (17, 1), MOB),
    ),
    # --- browsers ---
    (
        "safari_ios",
        IPHONE.format(v="17_1_1") + " Version/17.1 Mobile/15E148 Safari/604.1",
        Want(App.BROWSER, (17, 1), IOS, (17, 1, 1), MOB),
    ),
    (
        "chrome_ios",
        IPHONE.format(v="17_1") + " CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
        Want(App.BROWSER, (119, 0, 6045), IOS, (17, 1), MOB),
    ),
    (
        "chrome_android",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Mobile Safari/537.36",
        Want(App.BROWSER, (120, 0, 0), AND, (10,), MOB),
    ),
    (
        "samsung_internet",
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S9080) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        Want(App.BROWSER, (23, 0), AND, (13,), MOB),
    ),
    (
        "uc_browser",
        "Mozilla/5.0 (Linux; U; Android 12; zh-CN; V2203A Build/SP1A.210812.003) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/15.5.8.1321 Mobile Safari/537.36",
        Want("uc", (15, 5, 8, 1321), AND, (12,), MOB),
    ),
    (
        "sogou_mobile_browser_is_not_a_spider",
        "Mozilla/5.0 (Linux; Android 12; ALN-AL00 Build/HUAWEIALN-AL00) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/99.0.4844.88 Mobile Safari/537.36 SogouMSE,SogouMobileBrowser/12.2.0",
        Want(App.BROWSER, (99, 0, 4844), AND, (12,), MOB),
    ),
    (
        "chrome_windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36",
        Want(App.BROWSER, (120, 0, 0), WIN, (10,), DESK),
    ),
    (
        "chrome_mac",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        Want(App.BROWSER, (120, 0, 0), MAC, (10, 15, 7), DESK),
    ),
    (
        "chrome_linux",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36",
        Want(App.BROWSER, (120, 0, 0), LNX, None, DESK),
    ),
    (
        "firefox_ubuntu",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        Want(App.BROWSER, (121, 0), LNX, None, DESK),
    ),
    (
        "huawei_browser_harmonyos_android_compat",
        "Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.11.0.302) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.1.300 Mobile Safari/537.36",
        Want(App.BROWSER, (14, 0, 1), HOS, (), MOB),
    ),
    (
        "huawei_browser_harmonyos_next",
        "Mozilla/5.0 (Phone; OpenHarmony 5.0; HarmonyOS 5.0.1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300",
        Want(App.BROWSER, (5, 0, 4), HOS, (5, 0, 1), MOB),
    ),
    (
        "harmonyos_next_tablet",
        "Mozilla/5.0 (Tablet; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 "
        "Safari/537.36 ArkWeb/4.1.6.1",
        Want(App.BROWSER, (114, 0, 0), HOS, (5, 0), TAB),
    ),
    (
        "ipad_safari",
        "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
        "Mobile/15E148 Safari/604.1",
        Want(App.BROWSER, (17, 1), IOS, (17, 1), TAB),
    ),
    (
        # iPadOS Safari in its default desktop mode: indistinguishable from a Mac.
        "ipados_safari_desktop_mode",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15",
        Want(App.BROWSER, (17, 1), MAC, (10, 15, 7), DESK),
    ),
    (
        "android_tablet_chrome",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36",
        Want(App.BROWSER, (120, 0, 0), AND, (13,), TAB),
    ),
    # --- bots and link previews ---
    (
        "googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        Want(App.BOT, (), OS.OTHER, (), DESK, bot=True),
    ),
    (
        "googlebot_smartphone",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
        Want(App.BOT, (), AND, None, DESK, bot=True),
    ),
    (
        # Shaped like an iOS WKWebView (no Safari/), but it names a crawler.
        "crawler_shaped_like_ios_webview",
        IPHONE.format(v="17_0")
        + " Mobile/15E148 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        Want(App.BOT, (), IOS, None, DESK, bot=True),
    ),
    (
        "facebookexternalhit",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        Want(App.BOT, (), OS.OTHER, (), DESK, bot=True),
    ),
    (
        "slackbot",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        Want(App.BOT, (), OS.OTHER, (), DESK, bot=True),
    ),
    ("telegrambot", "TelegramBot (like TwitterBot)", Want(App.BOT, (), OS.OTHER, (), DESK, bot=True)),
    ("whatsapp_preview", "WhatsApp/2.23.20.0 A", Want(App.BOT, (), OS.OTHER, None, DESK, bot=True)),
    (
        "baiduspider",
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        Want(App.BOT, (), OS.OTHER, (), DESK, bot=True),
    ),
    (
        "sogou_spider",
        "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
        Want(App.BOT, (), OS.OTHER, (), DESK, bot=True),
    ),
    (
        "headless_chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.71 "
        "Safari/537.36",
        Want(App.BOT, (), LNX, None, DESK, bot=True),
    ),
    ("curl", "curl/8.4.0", Want(App.BOT, (), OS.OTHER, (), DESK, bot=True)),
    ("python_requests", "python-requests/2.31.0", Want(App.BOT, (), OS.OTHER, (), DESK, bot=True)),
    ("bare_okhttp", "okhttp/4.9.3", Want(App.BOT, (), OS.OTHER, (), DESK, bot=True)),
    ("empty", "", Want(App.BOT, (), OS.OTHER, (), DESK, bot=True)),
    ("whitespace", "  \t ", Want(App.BOT, (), OS.OTHER, (), DESK, bot=True)),
]


@pytest.mark.parametrize(("ua", "want"), [pytest.param(ua, want, id=name) for name, ua, want in CASES])
def test_table(ua: str, want: Want) -> None:
    got = parse_client(ua)
    assert isinstance(got, Client)
    assert (got.app, got.app_version) == (want.app, want.app_version)
    assert got.os == want.os
    if want.os_version is not None:
        assert got.os_version == want.os_version
    assert got.device == want.device
    assert got.bot is want.bot
    assert got.mini_program is want.mini_program


def test_table_names_are_unique() -> None:
    names = [name for name, _, _ in CASES]
    assert len(names) == len(set(names))


def test_browser_field_is_ua_parser_family() -> None:
    wechat = next(ua for name, ua, _ in CASES if name == "wechat_ios")
    chrome = next(ua for name, ua, _ in CASES if name == "chrome_android")
    assert parse_client(wechat).browser == ""  # named in-app webviews skip ua-parser's browser domain
    assert parse_client(chrome).browser == "Chrome Mobile"


def test_okhttp_inside_a_real_browser_ua_is_not_a_bot() -> None:
    ua = (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Mobile Safari/537.36 okhttp/4.9.3"
    )
    assert parse_client(ua).bot is False


def test_wechat_is_never_a_bot_even_with_bot_words() -> None:
    ua = (
        IPHONE.format(v="17_1")
        + " Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/WIFI Language/zh_CN curl/ Googlebot"
    )
    c = parse_client(ua)
    assert (c.app, c.bot) == (App.WECHAT, False)


def test_line_needs_a_boundary() -> None:
    line = IPHONE.format(v="17_1") + " Mobile/15E148 Safari Line/13.20.0"
    not_line = IPHONE.format(v="17_1") + " Version/17.1 Mobile/15E148 Safari/604.1 Pipeline/1.0"
    assert parse_client(line).app == App.OTHER_INAPP
    assert parse_client(not_line).app == App.BROWSER


# --- caching ------------------------------------------------------------------------------------------


def test_same_ua_gives_the_identical_object() -> None:
    ua = CASES[0][1]
    assert parse_client(ua) is parse_client(ua)
    assert parse_client(ua) is parse_client(str(ua + " ").rstrip())  # equal, not the same str object


def test_none_and_empty_are_bots() -> None:
    for ua in (None, "", " ", "\r\n"):
        c = parse_client(ua)
        assert (c.app, c.bot, c.device) == (App.BOT, True, Device.DESKTOP)


def test_cache_clear_and_info() -> None:
    cache_clear()
    assert cache_info().currsize == 0
    ua = CASES[0][1]
    parse_client(ua)
    parse_client(ua)
    info = cache_info()
    assert (info.currsize, info.misses, info.hits) == (1, 1, 1)
    assert info.maxsize == 4096 + 2048  # other user agents, and WeChat's apart


def test_huge_ua_is_truncated_before_parsing_and_caching() -> None:
    assert MAX_UA_LENGTH == 1024
    head = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) " + "x" * 2000
    a = head + "A" * 100_000
    b = head + "B" * 100_000 + " MicroMessenger/8.0.44"  # the marker lies past the cut
    cache_clear()
    ca = parse_client(a)
    cb = parse_client(b)
    assert ca is cb  # one cache entry for both: the key is the first 1024 characters
    info = cache_info()
    assert (info.currsize, info.misses, info.hits) == (1, 1, 1)
    # The WeChat marker was never seen; what is left names no browser and no engine, so it is a script.
    assert ca.app == App.BOT
    assert ca.os is OS.WINDOWS


def test_exactly_max_length_is_not_cut() -> None:
    ua = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) MicroMessenger/8.0.1 " + "x" * 2000)[
        :MAX_UA_LENGTH
    ]
    assert parse_client(ua).app == App.WECHAT


# --- robustness ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ua",
    [
        "\udc80\udcff MicroMessenger/8.0.1",  # lone surrogates from a surrogateescape'd header
        "\x00\x01\x02",
        "中文 浏览器",
        "QQ/" + "9" * 1500,  # a version longer than int()'s comfort zone, truncated to 1024
        "MicroMessenger/" + "1." * 600,
        "(" * 5000,
    ],
)
def test_odd_input_never_raises(ua: str) -> None:
    assert isinstance(parse_client(ua), Client)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, categories=None), max_size=1500))
def test_any_text_gives_a_client(ua: str) -> None:
    c = parse_client(ua)
    assert isinstance(c, Client)
    assert c.bot is (c.app == App.BOT)


def test_non_str_is_treated_as_empty() -> None:
    assert parse_client(b"curl/8.0").app == App.BOT  # type: ignore[arg-type]


@pytest.fixture
def no_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has not built ua-parser's tables yet (restored afterwards)."""
    monkeypatch.setattr(ua_tables, "_os_parser", None)
    monkeypatch.setattr(ua_tables, "_full_parser", None)
    cache_clear()


ODD_BROWSER = "Opera/9.80 (X11; Linux i686) Presto/2.12.388 Version/12.16"
ODD_BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.usefixtures("no_tables")
def test_concurrent_first_use_builds_one_parser() -> None:
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        seen.append(ua_tables._parser(ua_tables.Domain.ALL))
        parse_client(CASES[0][1])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8
    assert all(p is seen[0] for p in seen)


@pytest.mark.usefixtures("no_tables")
def test_common_user_agents_build_no_tables() -> None:
    clients.warm_up()
    for ua in (IPHONE.format(v="17_1") + " Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/WIFI",
               IPHONE.format(v="17_1") + " Version/17.1 Mobile/15E148 Safari/604.1",
               "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/120.0.0.0 Safari/537.36"):
        parse_client(ua)
    assert clients.tables_built() == "none"


@pytest.mark.usefixtures("no_tables")
def test_an_odd_user_agent_builds_only_the_tables_it_needs() -> None:
    bot = parse_client(ODD_BOT)
    assert bot.app == App.BOT
    assert clients.tables_built() == "os"  # a named bot needs only its OS
    opera = parse_client(ODD_BROWSER)
    assert (opera.app, opera.os, opera.browser) == (App.BROWSER, OS.LINUX, "Opera")
    assert clients.tables_built() == "all"
    assert ua_tables._parser(ua_tables.Domain.OS) is ua_tables._full_parser  # one parser answers for both


@pytest.mark.usefixtures("no_tables")
def test_warm_up_with_tables_builds_them() -> None:
    clients.warm_up(tables=True)
    assert clients.tables_built() == "all"
    clients.warm_up(tables=True)  # idempotent
    assert clients.tables_built() == "all"


# --- the user-agents compatible wrapper ----------------------------------------------------------------


def test_fast_user_agent_keeps_user_agents_properties() -> None:
    parser = ua_tables._parser(ua_tables.Domain.ALL)
    iphone = FastUserAgent(parser.parse(IPHONE.format(v="17_1") + " Version/17.1 Mobile/15E148 Safari/604.1"))
    assert (iphone.is_mobile, iphone.is_tablet, iphone.is_pc, iphone.is_bot) == (True, False, False, False)
    assert iphone.os.family == "iOS"
    assert iphone.os.version[:2] == (17, 1)
    bot = FastUserAgent(
        parser.parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    )
    assert bot.is_bot
    nothing = FastUserAgent(parser.parse("zzz"))
    assert (nothing.os.family, nothing.browser.family, nothing.device.family) == ("Other", "Other", "Other")


# --- parse_version ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("8.0.7", (8, 0, 7)),
        ("8.0.7(0x18000722)", (8, 0, 7)),
        ("8.0.43.2480(0x28002B51) WeChat/arm64", (8, 0, 43, 2480)),
        ("13", (13,)),
        (" 1.2", (1, 2)),
        ("1.2.", (1, 2)),
        ("garbage", ()),
        ("", ()),
        ("v8.0", ()),
        (".5", ()),
        ("9" * 10_000, (int("9" * 64),)),  # capped, never hits int()'s digit limit
    ],
)
def test_parse_version(text: str, want: Version) -> None:
    assert parse_version(text) == want


# --- classes of real-world mistakes (issue 9): one positive/negative pair each --------------------------

IPHONE_WV = IPHONE.format(v="17_1") + " Mobile/15E148"
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 12; {model}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Mobile Safari/537.36"
)
ANDROID_13_WV = ANDROID_WV.format(v="13", model="V2203A")


def app_of(ua: str) -> App:
    return parse_client(ua).app


@pytest.mark.parametrize(
    "ua",
    [
        "DingTalkBot-LinkService/1.0 (+https://open-doc.dingtalk.com/microapp/faquestions/ftpfeu)",
        "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/63.0 Safari/537.36 "
        "DingTalkBot-LinkService/1.0",
        "Mozilla/5.0 (compatible; Weibo spider)",
    ],
)
def test_a_bot_that_names_an_app_is_a_bot(ua: str) -> None:
    """A link-preview fetcher named after an app is a bot, not that app."""
    assert app_of(ua) == App.BOT


def test_the_app_itself_is_still_the_app() -> None:
    """DingTalk's and Weibo's own webviews keep their app."""
    assert app_of(IPHONE_WV + " AliApp(DingTalk/7.5.10) com.laiwang.DingTalk/31243211") == "dingtalk"
    assert app_of(IPHONE_WV + " Weibo (iPhone16,1__weibo__14.2.2__iphone__os17.3)") == "weibo"


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Bluesky Cardyb/1.1; "
        "+mailto:support@bsky.app) Chrome/100.0.0.0 Safari/537.36",
        "Iframely/1.3.1 (+https://iframely.com/docs/about)",
        "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
        "facebookcatalog/1.0",
        "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        "axios/1.6.2",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "Apache-HttpClient/4.5.13 (Java/17.0.2)",
        "HTTPie/3.2.2",
        "PostmanRuntime/7.36.0",
        "Go-http-client/2.0",
        "Java-http-client/17.0.2",
        "Mozilla/5.0 (compatible; Crusader/1.0)",
    ],
)
def test_crawlers_and_http_libraries_are_bots(ua: str) -> None:
    """Link-preview fetchers, headless browsers and HTTP libraries are bots."""
    assert app_of(ua) == App.BOT


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Mobile Safari/537.36",
        "Opera/9.80 (Android; Opera Mini/7.5.33361/31.1448; U; en) Presto/2.8.119 Version/11.1010",
    ],
)
def test_browsers_are_not_taken_for_bots(ua: str) -> None:
    """Real browsers, a phone maker whose name ends in "bot", and engine-named old browsers stay browsers."""
    assert app_of(ua) == App.BROWSER


@pytest.mark.parametrize(
    "ua",
    [
        IPHONE.format(v="17_1") + " GSA/300.0.601781316 Mobile/15E148 Safari/604.1",
        IPHONE.format(v="17_1") + " Version/17.1 Mobile/15E148 Snapchat/12.70.0.38 (like Safari/8617.1.6.10.4)",
        IPHONE.format(v="17_1") + " Version/17.1 Mobile/15E148 Safari/605.1 NAVER(inapp; search; 2000; 12.3.1; 15)",
        IPHONE.format(v="17_1") + " Mobile/15E148 Safari Line/13.20.0",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
        "Chrome/131.0.0.0 Mobile Safari/537.36 KAKAOTALK/10.2.3 (INAPP)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Slack/4.39.90 Chrome/127.0.6533.72 Electron/13.1.9 Safari/537.36",
        # Android 4.4 WebView: no "; wv" yet, but "Version/4.0 Chrome/", which Chrome itself never sends.
        "Mozilla/5.0 (Linux; Android 4.4.2; DC-705 Build/KVT49L) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/30.0.0.0 Safari/537.36",
    ],
)
def test_in_app_browsers_without_wv_are_in_app(ua: str) -> None:
    """Google app, Snapchat, Naver, LINE, KakaoTalk, Electron apps and pre-"; wv" WebViews are other_inapp."""
    assert app_of(ua) == App.OTHER_INAPP


@pytest.mark.parametrize(
    "marker",
    [
        "VivoBrowser/8.5.10.2", "SogouMobileBrowser/12.2.0", "UCBrowser/15.5.8.1321", "Quark/6.5.0.336",
        "MiuiBrowser/17.6.60", "HeyTapBrowser/40.8.9.1", "Mb2345Browser/15.6.2", "LieBaoFast/5.27.3",
        "OPR/79.1.4195.76796", "YaBrowser/23.7.1.112.00 SA/3",
    ],
)  # fmt: skip
def test_standalone_browsers_on_the_system_webview_are_browsers(marker: str) -> None:
    """An Android browser built on WebView (it sends "; wv") that names itself is a browser, not in-app (UC
    and Quark by their own catalogue entries, of kind browser)."""
    assert app_of(f"{ANDROID_13_WV} {marker}").kind == "browser"


def test_x5_core_inside_an_app_is_not_qq_browser() -> None:
    """Tencent's X5 core ("MQQBrowser/6.2 TBS/...") inside an unnamed app is in-app; QQ Browser is a browser."""
    x5 = ANDROID_WV.format(v="12", model="PEHM00").replace(
        "Mobile Safari", "MQQBrowser/6.2 TBS/046313 Mobile Safari"
    )
    assert app_of(x5) == App.OTHER_INAPP
    assert app_of(next(ua for name, ua, _ in CASES if name == "qq_browser_app_alone")) == App.BROWSER


@pytest.mark.parametrize(
    "ua",
    [
        ANDROID_13_WV + " musical_ly_2022803040 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly",
        IPHONE_WV + " BytedanceWebview/d8a21c6 trill_34.9.0 JsSdk/2.0 NetType/4G ByteLocale/en Region/MY",
        ANDROID_13_WV + " Channel/release AppName/ultralite app_version/27.2.3 Region/ID ByteLocale/id",
    ],
)
def test_tiktok_is_not_douyin(ua: str) -> None:
    """TikTok (its own markers, or a region/locale outside mainland China) is tiktok, not Douyin."""
    assert app_of(ua) == App.TIKTOK


def test_douyin_by_region_or_chinese_locale() -> None:
    """ByteDance's webview with Region/CN or a Chinese ByteLocale (and no TikTok marker) is Douyin."""
    assert app_of(ANDROID_13_WV + " BytedanceWebview/d8a21c6 ByteLocale/zh-CN Region/CN") == App.DOUYIN
    assert app_of(IPHONE_WV + " BytedanceWebview/d8a21c6 ByteLocale/zh") == App.DOUYIN


@pytest.mark.parametrize(
    "code", ["AliApp(LA/7.26.1)", "AliApp(AE/8.20.0)", "AliApp(FY/9.9.0)", "AliApp(IdleFish/7.8.10)"]
)
def test_other_alibaba_apps_are_not_taobao(code: str) -> None:
    """Lazada, AliExpress, Fliggy, Xianyu carry AliApp( and WindVane too; they are other_inapp."""
    assert app_of(f"{IPHONE_WV} {code} WindVane/8.5.0 1080X2134") == App.OTHER_INAPP


def test_taobao_and_tmall_codes_are_taobao() -> None:
    """Only AliApp(TB/ is the Taobao app, and AliApp(TM/ the Tmall app."""
    assert app_of(IPHONE_WV + " AliApp(TB/10.28.10) WindVane/8.5.0") == App.TAOBAO
    assert app_of(IPHONE_WV + " AliApp(TM/15.10.0) WindVane/8.5.0") == App.TMALL


def test_old_mac_wechat_without_macwechat_is_macos() -> None:
    """Old Mac WeChat says only WindowsWechat; the Macintosh platform wins, Windows WeChat stays Windows."""
    mac = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "MicroMessenger/2.3.24(0x12031810) MacWechat NetType/WIFI WindowsWechat"
    ).replace(" MacWechat", "")
    c = parse_client(mac)
    assert (c.app, c.os, c.device) == (App.WECHAT, OS.MACOS, DESK)
    assert parse_client(next(ua for n, ua, _ in CASES if n == "wechat_windows")).os is OS.WINDOWS


def test_x5_tbs_phone_with_mobile_split_from_safari_is_a_phone() -> None:
    """X5/TBS's "Mobile MQQBrowser/6.2 TBS/... Safari" (Mobile split from Safari) is a phone; no Mobile: tablet."""
    phone = (
        "Mozilla/5.0 (Linux; Android 6.0; M5 Note Build/MRA58K; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/53.0.2785.49 Mobile MQQBrowser/6.2 TBS/043024 Safari/537.36 MicroMessenger/6.5.4.1000"
    )
    assert parse_client(phone).device is MOB
    assert parse_client(next(ua for n, ua, _ in CASES if n == "android_tablet_chrome")).device is TAB


@pytest.mark.parametrize(
    "model", ["Lenovo TB-X606F", "SM-T505", "MatePad 11", "BAH3-W09", "Redmi Pad SE", "Vodafone Smart Tab 4G"]
)
def test_android_tablets_saying_mobile_safari_are_tablets(model: str) -> None:
    """A pad model (Tab, Pad, TB-, SM-T, Huawei -W09 Wi-Fi-only) is a tablet even with "Mobile Safari"."""
    ua = ANDROID_CHROME.format(model=model)
    assert parse_client(ua).device is TAB


@pytest.mark.parametrize("model", ["Coolpad 2041", "SM-W9023", "Pixel 8", "V2203A"])
def test_phones_with_pad_like_names_stay_phones(model: str) -> None:
    """Coolpad phones and Samsung W-series phones are not tablets."""
    ua = ANDROID_CHROME.format(model=model)
    assert parse_client(ua).device is MOB


def test_harmonyos_tablet_flags() -> None:
    """DingTalk on a HarmonyOS tablet ("Pad/APad Hmos/1") is a HarmonyOS tablet; a HarmonyOS phone is a phone."""
    tablet = (
        "Mozilla/5.0 (Linux; U; Android 10; zh-CN; BLM-00 Build/HUAWEIBLM-00) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.1.228 Mobile Safari/537.36 AliApp(DingTalk/6.5.30) "
        "com.alibaba.android.rimet/25293052 Channel/227200 language/zh-CN abi/64 Pad/APad Hmos/1"
    )
    c = parse_client(tablet)
    assert (c.app, c.os, c.device) == ("dingtalk", HOS, TAB)
    assert parse_client(next(ua for n, ua, _ in CASES if n == "huawei_browser_harmonyos_next")).device is MOB


def test_android_on_laptops_is_desktop() -> None:
    """Android apps on Chromebooks and Android-x86 laptops (no "Mobile", a PC model) are desktops, not tablets."""
    laptop = (
        "Mozilla/5.0 (Linux; Android 9; HP Chromebook 13 G1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/80.0.3987.162 Safari/537.36"
    )
    assert parse_client(laptop).device is DESK
    assert parse_client(laptop.replace("HP Chromebook 13 G1", "SM-X710")).device is TAB


# Classes of user agents the corpus (rules/user_agents) found misread, one real UA of each from it, with the
# source's labels: (name, UA, app, OS, device). router/decision/clients.py says why each reads so.
CORPUS_CLASSES = [
    # Windows Phone, Windows Mobile and Windows CE are no Windows: OS other, a phone.
    ("windows_phone_ie", "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; "
     "Touch; NOKIA; Lumia 920)", App.BROWSER, OS.OTHER, MOB),
    ("windows_phone_edge", "Mozilla/5.0 (Windows Phone 10.0; Android 4.2.1; Microsoft; Lumia 435 Dual SIM) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Mobile Safari/537.36 Edge/12.10166",
     App.BROWSER, OS.OTHER, MOB),
    ("windows_ce_uc", "Mozilla/4.0 (compatible; MSIE 4.01; Windows CE; PPC)/UC Browser7.8.0.95", "uc", OS.OTHER, MOB),
    # Other phone systems: Symbian (even with an iPhone's UA inside), Tizen, webOS, BlackBerry, feature phones.
    ("symbian_with_iphone_inside", "Mozilla/5.0 (Symbian; U; E7-00; xx) AppleWebKit/534.3 (KHTML, like Gecko) "
     "Mozilla/5.0 (iPhone; CPU iPhone OS 7_0 like Mac OS X) AppleWebKit/537.51.1 (KHTML, like Gecko) Version/7.0 "
     "Mobile/11A465 Safari/9537.53//1.40 Mobile Safari/534.3", App.BROWSER, OS.OTHER, MOB),
    ("tizen_phone", "Mozilla/5.0 (Linux; Tizen 2.2; sdk) AppleWebKit/537.3 (KHTML, like Gecko) Version/2.2 Mobile "
     "Safari/537.3", App.BROWSER, OS.OTHER, MOB),
    ("webos_phone", "Mozilla/5.0 (webOS/2.1.0; U; xx) AppleWebKit/532.2 (KHTML, like Gecko) Version/1.0 "
     "Safari/532.2 Pre/1.2", App.BROWSER, OS.OTHER, MOB),
    ("webos_touchpad", "Mozilla/5.0 (iPad; U; xx) AppleWebKit/534.6 (KHTML, like Gecko) wOSBrowser/234.83 "
     "Safari/534.6 011/07", App.BROWSER, OS.OTHER, TAB),
    ("blackberry_playbook_android", "Mozilla/5.0 (PlayBook; U; Android 2.3.3; xx; PlayBook Build/10.1.0.147) "
     "AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1", App.BROWSER, OS.OTHER, TAB),
    ("japanese_feature_phone", "Mozilla/4.0 (jig browser 7.3.7; P902i)", App.BROWSER, OS.OTHER, MOB),
    ("nokia_feature_phone_uc", "Mozilla/5.0 (Nokia500)UC AppleWebkit(like Gecko) Safari/530", "uc", OS.OTHER, MOB),
    ("brew_phone_uc", "Mozilla/5.0 (SCH-B309I/B309IGC14;U;REX/3.0;BREW/3.1.5;128*128) Ucweb/6.3", "uc", OS.OTHER,
     MOB),
    # Linux that says "like Android" is no Android; Ubuntu Touch says its form factor.
    ("pocketbook_like_android", "Mozilla/5.0 (Linux like Android; en_US) AppleWebKit/534.34 PocketBook/624 (screen "
     "600x800; FW W624.4.4.468) Mobile", App.BROWSER, LNX, TAB),
    ("ubuntu_touch_phone", "Mozilla/5.0 (Ubuntu; Mobile) WebKit/537.36", App.BROWSER, LNX, MOB),
    ("ubuntu_touch_tablet", "Mozilla/5.0 (Ubuntu; Tablet) WebKit/537.21", App.BROWSER, LNX, TAB),
    # An Android build id with the word Android left out; Samsung Internet on X11 (DeX); Sailfish's Android layer.
    ("android_without_the_word", "Mozilla/5.0 (Linux; 5.1.1; Nexus 5 Build/LMY48B) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/42.0.2311.107 Mobile Safari/537.36 Obigo/W20A.42", App.BROWSER, AND, MOB),
    ("samsung_dex", "Mozilla/5.0 (X11; Linux86_64) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/5.2 "
     "Chrome/51.0.2704.106 Safari/537.36", App.BROWSER, AND, DESK),
    ("sailfish_android_layer", "Mozilla/5.0 (Linux; Jolla; Sailfish; Android 4.4; Tablet) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/45.0.2454.23 Safari/537.36", App.BROWSER, OS.OTHER, TAB),
    # An iOS-only browser on a Mac platform: an iPad in desktop mode.
    ("firefox_ios_ipad_desktop_mode", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) FxiOS/24.1 Safari/605.1.15", App.BROWSER, IOS, TAB),
    # Tablets whose UA says "Mobile": Kindle Fire models, Silk, Huawei/Honor and old Samsung tablet codes.
    ("kindle_fire_kfarwi", "Mozilla/5.0 (Linux; Android 4.4.4; KFARWI Build/KTU84P) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Version/4.0 Chrome/34.0.0.0 Mobile Safari/537.36", App.OTHER_INAPP, AND, TAB),
    ("silk_mobile_mode", "Mozilla/5.0 (Linux; U; Android 2.3.4; en-us; Silk/1.0.13.81_10003810) AppleWebKit/533.1 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/533.1 Silk-Accelerated=true", App.BROWSER, AND, TAB),
    ("huawei_mediapad_webview", "Mozilla/5.0 (Linux; Android 10; KOB2-L09 Build/HUAWEIKOB2-L09; wv) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/92.0.4515.105 Mobile Safari/537.36 "
     "[FB_IAB/FB4A;FBAV/396.0.0.21.104;]", App.OTHER_INAPP, AND, TAB),
    ("galaxy_note_8_wechat", "Mozilla/5.0 (Linux; U; Android 4.3; zh-cn; N5110 Build/JLS36C) AppleWebKit/533.1 "
     "(KHTML, like Gecko)Version/4.0 MQQBrowser/5.4 TBS/025438 Mobile Safari/533.1 MicroMessenger/6.2.0.52_r1162382"
     ".561 NetType/3gnet Language/zh_CN", App.WECHAT, AND, TAB),
    ("lenovo_tablet_no_android_word", "Mozilla/5.0 (Linux; 13; TB310XU) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", App.BROWSER, None, TAB),  # the source labels no OS
    # Tablet lines of makers that also sell phones, by model code, whose stock browser said "Mobile Safari"
    # (the source labels no OS): Prestigio MultiPad, Lenovo Yoga Tab and Yoga Tablet, ViewSonic ViewPad,
    # ODYS, Allview City, Nabi, Lava Ivory, Celkon CT; TrekStor's SurfTab named after the platform.
    ("prestigio_multipad", "Mozilla/5.0 (Linux; U; Android 4.2.2; el-gr; PMT5887_3G Build/JDQ39) AppleWebKit/534.30 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", App.BROWSER, None, TAB),
    ("lenovo_yoga_tab_webview", "Mozilla/5.1(Linux; U; Android 5.0; zh-cn; Lenovo YT3-X50M Build/LMY47V) "
     "AppleWebKit/537.36(KHTML, like Gecko) Version/4.0 Chrome/38.0.2125.102 Mobile Safari/537.36",
     App.OTHER_INAPP, None, TAB),
    ("lenovo_yoga_tablet", "Mozilla/5.0 (Linux; U; Android 4.2.2; it-it; Lenovo B6000-F/JDQ39) AppleWebKit/534.30 "
     "(KHTML, like Gecko) Version/4.2.2 Mobile Safari/534.30", App.BROWSER, None, TAB),
    ("lenovo_yoga_tablet_uc", "Mozilla/5.0 (Linux; U; Android 4.4.2; en-US; Lenovo B8080-H Build/KVT49L) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.108 UCBrowser/12.0.0.1088 Mobile "
     "Safari/537.36", "uc", None, TAB),
    ("viewsonic_viewpad", "Mozilla/5.0 (Linux; U; Android 2.2.1; en-ca; ViewSonic VB733 Build/FRG83) "
     "AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1", App.BROWSER, None, TAB),
    ("odys_xpress", "Mozilla/5.0 (Linux; U; Android 2.3.1; en-us; ODYS-Xpress Build/GINGERBREAD) AppleWebKit/533.1 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/533.1", App.BROWSER, None, TAB),
    ("allview_city", "Mozilla/5.0 (Linux; U; Android 4.1.1; en-us; AllviewCity Build/JRO03C) AppleWebKit/534.30 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", App.BROWSER, None, TAB),
    ("nabi_kids_tablet", "Mozilla/5.0 (Linux; U; Android 2.2.1; en-us; NABI-A Build/MASTER) AppleWebKit/533.1 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/533.1", App.BROWSER, None, TAB),
    ("lava_ivory", "Mozilla/5.0 (Linux; U; Android 4.2; xx-xx; IvoryS Build/JDQ39) AppleWebKit/534.30 (KHTML, like "
     "Gecko) Version/4.0 Mobile Safari/534.30", App.BROWSER, None, TAB),
    ("celkon_ct", "Mozilla/5.0 (Linux; U; Android 4.1.2; en-us; Celkon CT 910+ Build/JZO54K) AppleWebKit/534.30 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", App.BROWSER, None, TAB),
    ("trekstor_surftab_after_platform", "Mozilla/5.0 (Linux; U; Android 4.1.1; engb; Build/IMM76D) AppleWebKit/534.46 "
     "(KHTML, like Gecko) Version/5.1 Mobile/9A405 Safari/7534.48.3 SurfTab_7.0", App.BROWSER, None, TAB),
    # Huawei's and Samsung's foldables send a tablet's UA: still phones. So is Amazon's Fire Phone, for all
    # its Silk; handheld game consoles are phones to a page.
    ("samsung_fold_no_mobile", "Mozilla/5.0 (Linux; Android 12; SM-F926U) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/99.0.4844.58 Safari/537.36", App.BROWSER, None, MOB),
    ("fire_phone_silk", "Mozilla/5.0 (Linux; U; Android 4.4.4; en-us; SD4930UR Build/KTU84P) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Silk/3.60 like Chrome/37.0.2026.117 Mobile Safari/537.36", App.BROWSER, None, MOB),
    ("nintendo_3ds", "Mozilla/5.0 (Nintendo 3DS; U; ; en) Version/1.7567.US", App.BROWSER, None, MOB),
    ("huawei_foldable_baidu", "Mozilla/5.0 (Linux; Android 10; TET-AN10 Build/HUAWEITET-AN10; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/76.0.3809.89 Safari/537.36 T7/12.26 BDOS/1.0 (HarmonyOS 2.2.0) "
     "SP-engine/2.36.0 baiduboxapp/12.26.5.10 (Baidu; P1 10) NABar/1.0", "baidu", HOS, MOB),
    # The WebView's shape without "; wv": a browser after Chrome 43 or with its own Version/; Amazon's WebView.
    ("firefox_focus_webview_shape", "Mozilla/5.0 (Linux; Android 7.1.1) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Focus/1.2.1 Chrome/59.0.3071.125", App.BROWSER, AND, TAB),
    ("samsung_internet_1", "Mozilla/5.0 (Linux; Android 4.4.2; xx; SAMSUNG SM-T330 Build/KOT49H) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/1.5 Chrome/28.0.1500.94 Safari/537.36", App.BROWSER, AND, TAB),
    ("android_5_builtin_webview", "Mozilla/5.0 (Linux; Android 5.1; AX1065 Build/LMY47D) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Version/4.0 Chrome/39.0.0.0 Mobile Safari/537.36", App.OTHER_INAPP, AND, MOB),
    ("amazon_webview_no_silk", "Mozilla/5.0 (Linux; Android 4.4.2; KFTHWI Build/KOT49H) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/40.0.2203.0 Safari/537.36", App.OTHER_INAPP, AND, TAB),
    # Browsers on the WebView that name themselves (Opera Touch); messengers' and runtimes' web views.
    ("opera_touch", "Mozilla/5.0 (Linux; Android 7.0; SM-A520F Build/NRD90M; wv) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Version/4.0 Chrome/65.0.3325.109 Mobile Safari/537.36 OPT/1.0.9", App.BROWSER, AND, MOB),
    ("viber_webview", "Mozilla/5.0 (Linux; Android 6.0.1; Le X526 Build/IIXOSOP5801910121S) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/56.0.2924.87 Mobile Safari/537.36 Viber", App.OTHER_INAPP, AND, MOB),
    # UC's other spellings.
    ("uc_mobile", "Mozilla/5.0 (Linux; Android 16; en-US; SM-S918B Build/BP2A.250605.031.A3) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/123.0.6312.80 UCMobile/15.0.7.1383 Mobile Safari/537.36", "uc", AND, MOB),
    ("uc_applewebkit", "Mozilla/5.0 (Linux; U; Android 2012.3-R-1103.0957; xx; LA-I2 Build/IMM76I) UC "
     "AppleWebKit/534.31 (KHTML, like Gecko) Mobile Safari/534.31", "uc", AND, MOB),
    ("uc_pc", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 "
     "Safari/537.36 UCPC/1.1.0.12", "uc", WIN, DESK),
    # Old and niche browsers name their platform: no bots.
    ("netscape_irix", "Mozilla/3.04Gold (X11; U; IRIX 5.3 IP22)", App.BROWSER, OS.OTHER, DESK),
    ("netsurf_risc_os", "NetSurf/3.0 (RISC OS)", App.BROWSER, OS.OTHER, DESK),
    ("netpositive_beos", "Mozilla/3.0 (compatible; NetPositive/2.2.1; BeOS)", App.BROWSER, OS.OTHER, DESK),
    ("blackberry_pager", "Mozilla/2.0 (compatible; Go.Web/6.2; HandHTTP 1.1; Elaine/1.0; RIM957 )", App.BROWSER,
     OS.OTHER, MOB),
    ("w3m", "w3m/0.5.1", App.BROWSER, OS.OTHER, DESK),
    # Electron desktop apps named by a bot word are web views; headless drivers and contact lines are bots.
    ("whatsapp_desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "WhatsApp/2.2017.6 Chrome/76.0.3809.146 Electron/6.1.9 Safari/537.36", App.OTHER_INAPP, WIN, DESK),
    ("slimerjs", "Mozilla/5.0 (X11; Linux x86_64; rv:21.0) Gecko/20100101 SlimerJS/0.7", App.BOT, LNX, DESK),
    ("pinterest_crawler", "Pinterest/0.2 (+https://www.pinterest.com/bot.html)", App.BOT, OS.OTHER, DESK),
    # A desktop application's own web view names its product (other_inapp markers): Valve's Steam client,
    # its overlay and Big Picture, Second Life's viewer, Adobe AIR, Fluid, Citrix, Office, Apple News.
    ("steam_overlay", "Mozilla/5.0 (Windows; U; Windows NT 6.3; en-US; Valve Steam GameOverlay/1478032887; ) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/55.0.2883.21 Safari/537.36", App.OTHER_INAPP, WIN, DESK),
    ("steam_big_picture", "Mozilla/5.0 (Linux; U; X11; en-US; Valve Steam Tenfoot/1463778979; ) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/49.0.2623.110 Safari/537.36", App.OTHER_INAPP, LNX, DESK),
    ("steam_client", "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; Valve Client/1437790054; ) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/43.0.2357.81 Safari/537.36", App.OTHER_INAPP, WIN, DESK),
    ("second_life", "Mozilla/5.0 (Windows; U; Windows NT 5.1; ru-RU) AppleWebKit/533.3 (KHTML, like Gecko) "
     "SecondLife/3.7.28.300847 (Second Life Release; default skin) Safari/533.3", App.OTHER_INAPP, WIN, DESK),
    ("adobe_air", "Mozilla/5.0 (Macintosh; U; Intel Mac OS X; de) AppleWebKit/533.19.4 (KHTML, like Gecko) "
     "AdobeAIR/13.0", App.OTHER_INAPP, MAC, DESK),
    ("citrix_chrome_app", "Mozilla/5.0 (X11; Windows x86_64 10718.88.2) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/68.0.3440.118 Safari/537.36 CitrixChromeApp", App.OTHER_INAPP, None, DESK),
    ("evernote_windows", "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Evernote "
     "Windows/306387 (pt-PT, DDL); Windows/6.1.0 (Win32); Safari/537.36", App.OTHER_INAPP, None, DESK),
    ("ms_office", "Mozilla/4.0 (compatible; ms-office; MSOffice 16)", App.OTHER_INAPP, None, DESK),
    ("apple_news", "Mozilla/5.0 (iPad; CPU OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 (KHTML, like Gecko) "
     "AppleNews/1000 Version/2.3.1", App.OTHER_INAPP, IOS, TAB),
    # A web view that calls itself an in-app browser names no browser.
    ("ipnos_in_app_browser", "Mozilla/5.0 (iPhone; CPU iPhone OS 11_1_1 like Mac OS X) AppleWebKit/604.3.5 (KHTML, "
     "like Gecko) Mobile/15B150 IpnosInAppBrowser RelaxMelodies", App.OTHER_INAPP, IOS, MOB),
    # Site-speed testers and HTTP libraries are bots, whatever browser they copy.
    ("pagespeed_insights", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
     "like Gecko; Google Page Speed Insights) Chrome/41.0.2272.118 Mobile Safari/537.36", App.BOT, None, DESK),
    ("libcurl", "libcurl-agent/1.0", App.BOT, None, DESK),
    # The Mac's browsers before WebKit named no engine: no scripts.
    ("netscape_mac", "Mozilla/4.5 [fr] (Macintosh; U; PPC)", App.BROWSER, None, DESK),
    # Android all-in-one PCs and monitors are desktops, "Mobile" or not.
    ("acer_da_monitor", "Mozilla/5.0 (Linux; Android 4.2.1; DA241HL Build/JOP40D) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/46.0.2490.76 Safari/537.36", App.BROWSER, AND, DESK),
    ("android_netbook_pc", "Mozilla/5.0 (Linux; U; Android 2.2; en-us; NBPC724 Build/FRF85B) AppleWebKit/533.1 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/533.1", App.BROWSER, AND, DESK),
    # The WeTab, a tablet named anywhere.
    ("wetab", "Mozilla/5.0 (X11; U; Linux i686; de-DE) AppleWebKit/534.3 (KHTML, like Gecko) WeTab-Browser "
     "Safari/534.3", App.BROWSER, None, TAB),
    # Puffin's device is its version's suffix (AT: Android tablet); its OS stays the platform's (sources differ).
    ("puffin_android_tablet", "Mozilla/5.0 (X11; U; Linux x86_64; fa-ir) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/30.0.1599.114 Safari/537.36 Puffin/4.1.0.1084AT", App.BROWSER, None, TAB),
    ("puffin_ios_phone", "Mozilla/5.0 (X11; U; Linux x86_64; ar-SA@calendar=gregorian) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/30.0.1599.114 Safari/537.36 Puffin/4.4.1IP", App.BROWSER, None, MOB),
    # Windows Phone's IE in desktop mode, and PalmOS, are no Windows; an X11 platform naming no system is Linux.
    ("windows_phone_desktop_mode", "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0; ARM; Touch; "
     "WPDesktop; Lumia 930)", App.BROWSER, OS.OTHER, MOB),
    ("palmos_blazer", "Mozilla/4.0 (compatible; MSIE 6.0; Windows 95; PalmSource; Blazer 3.0) 16; 160x160",
     App.BROWSER, OS.OTHER, MOB),
    ("x11_no_system", "Mozilla/5.0 (X11; ) AppleWebKit/534.24 (KHTML, like Gecko) Chrome/11.0.696.34 "
     "Safari/534.24", App.BROWSER, LNX, DESK),
]


@pytest.mark.parametrize(("ua", "app", "os", "device"),
                         [pytest.param(ua, app, os, device, id=name) for name, ua, app, os, device in CORPUS_CLASSES])
def test_corpus_classes(ua: str, app: str, os: OS | None, device: Device) -> None:
    """Each class of user agents the corpus found misread reads as its source labels it (os None: unlabelled)."""
    got = parse_client(ua)
    assert (str(got.app), got.os if os else None, got.device) == (app, os, device)


def test_corpus_class_uas_are_in_the_corpus() -> None:
    """The class table's user agents are real: each is a row of rules/user_agents."""
    files = (Path(__file__).parent.parent / "rules" / "user_agents").glob("*.jsonl")
    corpus = {json.loads(line)["ua"] for path in files for line in path.read_text(encoding="utf-8").splitlines()}
    assert [name for name, ua, *_ in CORPUS_CLASSES if ua not in corpus] == []
