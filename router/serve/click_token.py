"""Click tokens: what a landing page carries so that what happened after the tap can be told back.

A landing response carries one token: the click's id (its request id, as in its click line), the rule that
answered, the rules version, the rollout arms the click was in or out of, the app the tap happened in, an
expiry and the visitor the click was decided for, sealed with the router's signing keys (ROUTER_SIGNING_KEYS,
the ones ad links use). The page sends it back with each outcome beacon (router.serve.outcomes), and puts it
into its own URL, so that a person who follows the guide ("open in the browser") brings it along: a click
that carries a token made for another app is that click's second jump.

A token is opaque: its fields are encrypted and authenticated with AES-256-GCM, so whoever holds one (any
page that sees the URL, any chat it is shared in) learns no rule id, rules version, rollout arm, app or
click id from it (SECURITY.md: rule ids, versions and traffic volume are private), and cannot make or
change one: a beacon or a second jump without a valid, unexpired token changes nothing. The AES key is
derived from the signing key's secret with HKDF-SHA256 and a label of its own, so it is never the key of
anything else made from that secret (ad-link signatures, visitor ids).

Format: `<kid>.<sealed>`. The kid (which signing key sealed it, needed to pick the key and not secret) is in
clear and authenticated as associated data. `sealed` is base64url without padding of a 12-byte random nonce,
then the ciphertext and its 16-byte tag. The plaintext is the fields in ClickToken's order joined by
newlines (a field's own `%` and newlines percent-encoded), then 0x80 and zero bytes up to a length that
makes the whole sealed bytes a multiple of 24.
"""

from __future__ import annotations

import binascii
import os
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from router.decision.signing import SigningKeys

__all__ = ["MAX_TOKEN_CHARS", "TOKEN_TTL_SECONDS", "ClickToken", "make_token", "read_token", "token_of"]

# A token is good for one escape to the browser and for the beacons of one page view: hours, not a day, so the
# token in a shared URL can't act on other people's clicks for long.
TOKEN_TTL_SECONDS = 2 * 3600
# A longer one is not ours: refused before any decoding. Room for a dozen rollout arms with long rule ids, and
# still within a beacon's body (router.serve.outcomes: MAX_BODY) with its event name.
MAX_TOKEN_CHARS = 960
_KEY_LABEL = b"adlink-router click-token aes-256-gcm v1"
_NONCE = 12  # bytes: GCM's own size, random per token
_TAG = 16
# Sealed bytes come in multiples of 24: the length tells little about the fields', and, a multiple of 3, it
# leaves no spare bits in the base64url text, so each token has one spelling and any changed character
# breaks it.
_BLOCK = 24
_END = b"\x80"  # ends the fields; only zero bytes follow it
_FIELDS = 8
_URLSAFE = bytes.maketrans(b"+/", b"-_")
# Back from base64url. `+`, `/` and `=` (a token has no padding) become a character the strict decoder refuses:
# a token has one spelling.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/***")


@dataclass(frozen=True, slots=True)
class ClickToken:
    click: str  # the click's request id (its click line's request_id)
    rule: str  # the rule that answered
    rules: str  # the rules version that decided
    arms: str  # the rollout arms, as the click line's `arms` joined: "rule:in,other:out"
    app: str  # the app the tap happened in (wechat, qq, browser...)
    expires: int  # POSIX seconds
    visitor: str = ""  # the visitor the click was decided for (its pseudonym), so beacons can be bounded per visitor
    link: str = ""  # the short link clicked (/s/<code>), "" for a long link: an escape is the same link's only


@lru_cache(maxsize=16)  # a few signing keys at most
def _aead(secret: bytes) -> AESGCM:
    """The AES-256-GCM key of a signing secret: derived (HKDF) and set up once, not per landing response."""
    return AESGCM(HKDF(algorithm=SHA256(), length=32, salt=None, info=_KEY_LABEL).derive(secret))


def _field(value: str) -> str:
    """A field with its separator and escape character encoded (unquote reads it back): ids are nearly always
    plain, and two str.replace calls cost a fraction of quote()."""
    return value.replace("%", "%25").replace("\n", "%0A") if "%" in value or "\n" in value else value


def make_token(keys: SigningKeys, click: str, rule: str, rules: str, arms: str, app: str, expires: int,
               visitor: str = "", link: str = "") -> str:
    """A token for a click (ClickToken's fields, in order): one per landing response, so a few microseconds
    (no dataclass built, the fields that clicks share joined once, the key derived once)."""
    kid, secret = keys.keys[0]
    fields = (f"{_field(click)}\n{_shared_fields(rule, rules, arms, app)}\n{expires}\n{_field(visitor)}"
              f"\n{_field(link)}").encode()
    padding = -(_NONCE + len(fields) + len(_END) + _TAG) % _BLOCK
    nonce = os.urandom(_NONCE)
    sealed = nonce + _aead(secret).encrypt(nonce, fields + _END + bytes(padding), kid.encode())
    return f"{kid}.{binascii.b2a_base64(sealed, newline=False).translate(_URLSAFE).decode()}"


@lru_cache(maxsize=1024)  # rules x apps x arms in use: a few dozen
def _shared_fields(rule: str, rules: str, arms: str, app: str) -> str:
    return "\n".join([_field(rule), _field(rules), _field(arms), _field(app)])


def token_of(token: ClickToken, keys: SigningKeys) -> str:
    """make_token for a ClickToken (tests, tools)."""
    return make_token(keys, token.click, token.rule, token.rules, token.arms, token.app, token.expires,
                      token.visitor, token.link)


def read_token(text: str, keys: SigningKeys, now: float) -> ClickToken | None:
    """The token's fields when `text` is a token these keys sealed and it has not expired; else None."""
    if not text or len(text) > MAX_TOKEN_CHARS:
        return None
    kid, dot, encoded = text.partition(".")
    secret = keys.secret(kid) if dot else None
    if secret is None:
        return None
    try:
        # Strict: only base64url letters (a second dot, `+`, `/`, `=` are refused), in whole 4-character groups.
        sealed = binascii.a2b_base64(encoded.encode("ascii").translate(_FROM_URLSAFE), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    if len(sealed) < _NONCE + _TAG + len(_END):
        return None
    try:
        plain = _aead(secret).decrypt(sealed[:_NONCE], sealed[_NONCE:], kid.encode())
    except InvalidTag:
        return None
    fields = plain.rstrip(b"\0")
    if not fields.endswith(_END):
        return None
    parts = fields[:-len(_END)].decode("utf-8", "replace").split("\n")
    if len(parts) == _FIELDS - 1:  # made before tokens named their short link (good for two hours): none
        parts.append("")
    if len(parts) != _FIELDS:
        return None
    click, rule, rules, arms, app, expires, visitor, link = (unquote(part) for part in parts)
    try:
        expiry = int(expires)
    except ValueError:
        return None
    if now >= expiry:
        return None
    return ClickToken(click, rule, rules, arms, app, expiry, visitor, link)
