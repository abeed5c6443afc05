"""WeChat's Android user agents as a day of traffic brings them: every one new, its parts not.

Every WeChat user agent on Android carries a per-install id (`MMWEBID/`), so a router sees a never-seen
string on nearly every click. Its other parts come from small sets: a few hundred phone models with a
firmware build or two each, a few WeChat releases and their webview builds, six Android versions, three
network types. `wechat_android(i)` builds the i-th such user agent; no two i give the same string (the
id and the webview build together encode i) while models, builds and versions repeat as they do in
real traffic. `worst_case(i)` makes every part new (model, build, versions): no real phone sends that,
but it bounds what a flood of made-up user agents costs. bench_decide.py uses both directly;
http_bench.py hands the same pools to wrk's Lua (`lua_tables()`), which assembles the same strings.
"""

from __future__ import annotations

# 325 model codes in the shapes phone makers use (vivo V2xxxA, OPPO PxxM00, Xiaomi 22081212C...).
_PREFIXES = ("V22", "PJA1", "PEHM0", "M2012K1", "NOH-AN0", "SM-S91", "220812", "RMX37", "CPH24", "LGE-AN",
             "PCLM1", "ALN-AL", "2304FPN6D")
MODELS = tuple(f"{prefix}{n:02d}" for prefix in _PREFIXES for n in range(25))
BUILD_BASES = ("TP1A.220624.014", "UKQ1.230924.001", "SKQ1.211019.001", "AP3A.240905.015")
ANDROID = ("10", "11", "12", "13", "14", "15")
CHROME = ("111.0.5563.116", "116.0.0.0", "120.0.6099.193", "122.0.6261.120", "126.0.6478.188")
# (WeChat version, its hex build code): the releases in use at once.
WECHAT = (("8.0.43.2480", "0x28002B51"), ("8.0.44.2502", "0x28002C36"), ("8.0.46.2540", "0x28002E3C"),
          ("8.0.47.2560", "0x28002F30"), ("8.0.49.2600", "0x28003133"), ("8.0.50.2701", "0x28003237"))
NETS = ("WIFI", "4G", "5G")
IDS = 9973  # MMWEBID values (a prime, so the other parts' cycles don't line up with it)


def wechat_android(i: int) -> str:
    """The i-th of a day's WeChat user agents on Android (see the module's docstring)."""
    m = i * 7 % len(MODELS)
    b = m % 2 * 2 + i // len(MODELS) % 2  # two firmware builds per model, and the Android each runs
    version, code = WECHAT[i % len(WECHAT)]
    return (
        f"Mozilla/5.0 (Linux; Android {ANDROID[(m + b) % len(ANDROID)]}; {MODELS[m]} Build/{BUILD_BASES[b]}; wv) "
        f"AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{CHROME[i % len(CHROME)]} Mobile "
        f"Safari/537.36 XWEB/{1160000 + i // IDS} MMWEBSDK/20240404 MMWEBID/{i % IDS} "
        f"MicroMessenger/{version}({code}) WeChat/arm64 Weixin NetType/{NETS[i % len(NETS)]} Language/zh_CN "
        "ABI/arm64"
    )


def worst_case(i: int) -> str:
    """A WeChat user agent whose every part is new: model, firmware build, Android, Chrome and WeChat
    versions."""
    return (
        f"Mozilla/5.0 (Linux; Android {10 + i % 6}; V{i} Build/TP1A.{i}; wv) AppleWebKit/537.36 (KHTML, "
        f"like Gecko) Version/4.0 Chrome/120.0.6099.{i % 999} Mobile Safari/537.36 XWEB/{i % 10**8} "
        f"MMWEBSDK/20240404 MMWEBID/{i % IDS} MicroMessenger/8.0.47.{i % 100000}(0x28002F30) WeChat/arm64 "
        "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
    )


def lua_tables() -> str:
    """The pools above as Lua tables, for wrk's script (benchmarks/http_bench.py)."""

    def table(values: tuple[str, ...]) -> str:
        return "{" + ", ".join(f'"{value}"' for value in values) + "}"

    return "\n".join((
        f"local MODELS = {table(MODELS)}",
        f"local BUILD_BASES = {table(BUILD_BASES)}",
        f"local ANDROID = {table(ANDROID)}",
        f"local CHROME = {table(CHROME)}",
        f"local WECHAT = {table(tuple(version for version, _ in WECHAT))}",
        f"local CODES = {table(tuple(code for _, code in WECHAT))}",
        f"local NETS = {table(NETS)}",
        f"local IDS = {IDS}",
    ))
