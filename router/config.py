"""Settings from the environment (and CLI flags), read once at startup.

| variable | default | meaning |
| --- | --- | --- |
| ROUTER_RULES_DIR | the shipped `rules/` | directory of rule files |
| ROUTER_ALLOWED_HOSTS | taobao.com,tmall.com,tb.cn,tmall.hk | destination hosts (dot-boundary suffixes) |
| ROUTER_SIGNING_KEYS | a development key, with a warning | `kid:secret,…` for /ad links; first signs |
| ROUTER_FORWARD_PARAMS | gdt_vid,qz_gdt,weixinadinfo,click_id | query params passed on to the destination |
| ROUTER_FALLBACK_DELAY_MS | 2000 | landing page in a phone browser: wait for the app before the web page |
| ROUTER_LOG_LEVEL | info | log level |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from router.links import DEFAULT_ALLOWED_HOSTS
from router.signing import SigningKeys

DEFAULT_FORWARD_PARAMS = ("gdt_vid", "qz_gdt", "weixinadinfo", "click_id")
VISITOR_COOKIE = "adlink_vid"
# How long a phone's landing page waits for the app before it falls back to the web page. Slow phones
# and confirm dialogs need well over a second (DOMAIN.md: the usual backstop is 1.5-2.5 s).
DEFAULT_FALLBACK_DELAY_MS = 2000
_DEVELOPMENT_KEYS = SigningKeys.development_keys()


def bundled_rules_dir() -> Path:
    """The shipped rules: ./rules of a source checkout, or the copy inside an installed wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "rules", package / "bundled_rules"):
        if candidate.is_dir():
            return candidate
    return package.parent / "rules"


def _delay(text: str) -> int:
    if not text.strip():
        return DEFAULT_FALLBACK_DELAY_MS
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"ROUTER_FALLBACK_DELAY_MS must be a number of milliseconds, got {text!r}") from None
    if not 300 <= value <= 10_000:
        raise ValueError(f"ROUTER_FALLBACK_DELAY_MS must be between 300 and 10000 milliseconds, got {value}")
    return value


def _csv(text: str, *, lower: bool = True) -> tuple[str, ...]:
    parts = (part.strip() for part in text.split(","))
    return tuple(part.lower() if lower else part for part in parts if part)


@dataclass(frozen=True, slots=True)
class Settings:
    rules_dir: Path
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    signing_keys: SigningKeys = _DEVELOPMENT_KEYS
    forward_params: tuple[str, ...] = DEFAULT_FORWARD_PARAMS
    fallback_delay_ms: int = DEFAULT_FALLBACK_DELAY_MS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, rules_dir: str | None = None) -> Settings:
        """Settings from environment variables; raises ValueError (SigningKeyError) with a clear sentence."""
        env = os.environ if env is None else env
        keys_text = env.get("ROUTER_SIGNING_KEYS", "").strip()
        keys = SigningKeys.parse(keys_text) if keys_text else SigningKeys.development_keys()
        directory = rules_dir or env.get("ROUTER_RULES_DIR") or str(bundled_rules_dir())
        return cls(
            rules_dir=Path(directory),
            allowed_hosts=_csv(env.get("ROUTER_ALLOWED_HOSTS", "")) or DEFAULT_ALLOWED_HOSTS,
            signing_keys=keys,
            # Query parameter names are case-sensitive: forwarded exactly as configured.
            forward_params=_csv(env.get("ROUTER_FORWARD_PARAMS", ""), lower=False) or DEFAULT_FORWARD_PARAMS,
            fallback_delay_ms=_delay(env.get("ROUTER_FALLBACK_DELAY_MS", "")),
        )
