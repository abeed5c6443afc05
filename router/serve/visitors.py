"""Visitor ids: issued by the router, signed, and the key of every rollout bucket.

A visitor's cookie (`adlink_vid`) is `<id>.<kid>.<tag>`: 128 random bits, the signing key that issued it
(ROUTER_SIGNING_KEYS: the first key issues, every listed key is still read) and a tag, the first half of
HMAC-SHA256(key, id). A cookie without a valid tag (made up, edited, an older format, or issued by a key no
longer listed) is not the router's: the click gets a fresh id, and the answer sets it.

What the rules see as the visitor (Context.visitor, the click line's `visitor`, the input of every rollout
bucket) is the HMAC's second half: a pseudonym only the router can compute from the cookie. Nobody can
choose a visitor id whose bucket falls where they like, not even from cookies the router issued them, since
the bucket's input never leaves the server. A replay (`rules diff`, `explain --batch`) reads the pseudonym
from the click line, so it needs no key; and the logs hold no cookie that would let someone act as a visitor.

Rotation: a new first key issues new visitors; a returning visitor keeps the key, and so the buckets, it was
issued with, for as long as that key is listed. Dropping a key re-draws its visitors' buckets.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
from enum import StrEnum
from functools import lru_cache
from typing import Any

from starlette.requests import cookie_parser

from router.decision.recent import Recent
from router.decision.signing import SigningKeys
from router.serve.config import VISITOR_COOKIE

__all__ = ["VisitorFrom", "Visitors", "visitor_cookie"]

_PURPOSE = b"adlink-router visitor v1"
_ID_BYTES = 16
_HALF = 16  # of the HMAC's 32 bytes: the tag is shown, the pseudonym never
_ID_CHARS = 22  # base64url of 16 bytes, unpadded
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_KEPT = 8192  # cookies read lately: a returning visitor costs a lookup, not an HMAC


class VisitorFrom(StrEnum):
    COOKIE = "cookie"  # the router's own cookie came back
    NEW = "new"  # issued with this answer


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


@lru_cache(maxsize=16)  # a few signing keys at most
def _states(secret: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) keyed for visitors, as its two hash states after the key's inner and outer pads:
    the key setup once, not per click. The key is derived from the signing secret with a purpose of its own,
    so it never signs anything an ad link or a click token does."""
    padded = hmac.new(secret, _PURPOSE, hashlib.sha256).digest().ljust(_BLOCK, b"\0")
    return (hashlib.sha256(bytes(byte ^ 0x36 for byte in padded)),
            hashlib.sha256(bytes(byte ^ 0x5C for byte in padded)))


_BLOCK = 64  # SHA-256's block size


def _halves(secret: bytes, visitor_id: bytes) -> tuple[str, str]:
    inner_state, outer_state = _states(secret)
    inner = inner_state.copy()
    inner.update(visitor_id)
    outer = outer_state.copy()
    outer.update(inner.digest())
    digest = outer.digest()
    return _b64(digest[:_HALF]), _b64(digest[_HALF:])


class Visitors:
    """Reads and issues visitor cookies with the signing keys in use."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys
        self._read: Recent[str, str] = Recent(_KEPT)

    def read(self, cookie: str | None) -> str | None:
        """The pseudonym of a cookie the router issued with a key still listed; None for any other."""
        if not cookie:
            return None
        known = self._read.get(cookie)
        if known is not None:
            return known
        id_text, _, rest = cookie.partition(".")
        kid, _, tag = rest.partition(".")
        secret = self.keys.secret(kid) if len(id_text) == _ID_CHARS and tag else None
        if secret is None:
            return None
        try:
            visitor_id = binascii.a2b_base64(id_text.translate(_FROM_URLSAFE) + "==")
        except (binascii.Error, ValueError):
            return None
        if len(visitor_id) != _ID_BYTES or _b64(visitor_id) != id_text:  # one spelling per id
            return None
        expected, pseudonym = _halves(secret, visitor_id)
        # Constant time: a byte-by-byte compare would tell a forger how much of a tag was right.
        if not hmac.compare_digest(expected.encode(), tag.encode("utf-8", "replace")):
            return None
        self._read.put(cookie, pseudonym)
        return pseudonym

    def issue(self) -> tuple[str, str]:
        """A fresh visitor: (its cookie, its pseudonym)."""
        kid, secret = self.keys.keys[0]
        visitor_id = os.urandom(_ID_BYTES)
        tag, pseudonym = _halves(secret, visitor_id)
        return f"{_b64(visitor_id)}.{kid}.{tag}", pseudonym


_FROM_URLSAFE = str.maketrans("-_", "+/")


def visitor_cookie(cookie_headers: list[bytes]) -> str | None:
    """The visitor cookie among a request's Cookie headers, all of them (an HTTP/2 hop may split one in
    several): the click and its page's beacons read the same one."""
    if not cookie_headers:
        return None
    joined = cookie_headers[0] if len(cookie_headers) == 1 else b"; ".join(cookie_headers)
    return cookie_parser(joined.decode("latin-1")).get(VISITOR_COOKIE)
