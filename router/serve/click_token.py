"""Click tokens: what a landing page carries so that what happened after the tap can be told back.

A landing response carries one token: the click's id (its request id, as in its click line), the rule that
answered, the rules version, the rollout arms the click was in or out of, the app the tap happened in and
an expiry, signed with the router's signing keys (ROUTER_SIGNING_KEYS, the ones ad links use). The page
sends it back with each outcome beacon (router.serve.outcomes), and puts it into its own URL, so that a
person who follows the guide ("open in the browser") brings it along: a click that carries a token made
for another app is that click's second jump.

The signature covers the fields and a purpose of its own ("click-token"), so an ad link's signature can
never pass for a token or the other way round. A token tells nothing secret (the ids are in the logs); it
only has to be unforgeable: a beacon or a second jump without a valid, unexpired token changes nothing.

Format: `<fields>.<kid>.<mac>`: the fields joined by newlines (a field's own `%` and newlines
percent-encoded), base64url-encoded without padding; the MAC a truncated HMAC-SHA256 (128 bits), base64url.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from router.decision.signing import SigningKeys

__all__ = ["MAX_TOKEN_CHARS", "TOKEN_TTL_SECONDS", "ClickToken", "make_token", "read_token", "token_of"]

TOKEN_TTL_SECONDS = 24 * 3600  # outcomes and second jumps a day after the tap still count; later ones not
MAX_TOKEN_CHARS = 600  # a longer one is not ours: refused before any decoding
_PURPOSE = b"adlink-router click-token v1\n"
_MAC_BYTES = 16
_FIELDS = 6


@dataclass(frozen=True, slots=True)
class ClickToken:
    click: str  # the click's request id (its click line's request_id)
    rule: str  # the rule that answered
    rules: str  # the rules version that decided
    arms: str  # the rollout arms, as the click line's `arms` joined: "rule:in,other:out"
    app: str  # the app the tap happened in (wechat, qq, browser...)
    expires: int  # POSIX seconds


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, fields: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) of the purpose and the fields, from the key's two hash states made once: one per
    landing response, where a fresh HMAC's key setup would cost most of its time."""
    inner_state, outer_state = _states(secret)
    inner = inner_state.copy()
    inner.update(_PURPOSE + fields)
    outer = outer_state.copy()
    outer.update(inner.digest())
    return _b64(outer.digest()[:_MAC_BYTES])


@lru_cache(maxsize=16)  # a few signing keys at most
def _states(secret: bytes) -> tuple[Any, Any]:
    """SHA-256 after the key's inner and outer pads (RFC 2104), as HMAC begins."""
    if len(secret) > _BLOCK:
        secret = hashlib.sha256(secret).digest()
    padded = secret.ljust(_BLOCK, b"\0")
    return (hashlib.sha256(bytes(byte ^ 0x36 for byte in padded)),
            hashlib.sha256(bytes(byte ^ 0x5C for byte in padded)))


_BLOCK = 64  # SHA-256's block size


def _field(value: str) -> str:
    """A field with its separator and escape character encoded (unquote reads it back): ids are nearly always
    plain, and two str.replace calls cost a fraction of quote()."""
    return value.replace("%", "%25").replace("\n", "%0A") if "%" in value or "\n" in value else value


def make_token(keys: SigningKeys, click: str, rule: str, rules: str, arms: str, app: str, expires: int) -> str:
    """A token for a click (ClickToken's fields, in order): one per landing response, so a few microseconds
    (no dataclass built, the fields that clicks share joined once, the HMAC's key setup done once)."""
    fields = f"{_field(click)}\n{_shared_fields(rule, rules, arms, app)}\n{expires}".encode()
    return f"{_b64(fields)}.{keys.signing_kid}.{_mac(keys.keys[0][1], fields)}"


@lru_cache(maxsize=1024)  # rules x apps x arms in use: a few dozen
def _shared_fields(rule: str, rules: str, arms: str, app: str) -> str:
    return "\n".join([_field(rule), _field(rules), _field(arms), _field(app)])


def token_of(token: ClickToken, keys: SigningKeys) -> str:
    """make_token for a ClickToken (tests, tools)."""
    return make_token(keys, token.click, token.rule, token.rules, token.arms, token.app, token.expires)


def read_token(text: str, keys: SigningKeys, now: float) -> ClickToken | None:
    """The token's fields when `text` is a token these keys signed and it has not expired; else None."""
    if not text or len(text) > MAX_TOKEN_CHARS or text.count(".") != 2:
        return None
    encoded, kid, mac = text.split(".")
    secret = keys.secret(kid)
    if secret is None:
        return None
    try:
        fields = _unb64(encoded)
    except (binascii.Error, ValueError):
        return None
    # Constant time: a byte-by-byte compare would tell a forger how much of a MAC was right.
    if not hmac.compare_digest(_mac(secret, fields).encode(), mac.encode("utf-8", "replace")):
        return None
    parts = fields.decode("utf-8", "replace").split("\n")
    if len(parts) != _FIELDS:
        return None
    click, rule, rules, arms, app, expires = (unquote(part) for part in parts)
    try:
        expiry = int(expires)
    except ValueError:
        return None
    if now >= expiry:
        return None
    return ClickToken(click, rule, rules, arms, app, expiry)
