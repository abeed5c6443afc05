"""HMAC-SHA256 signatures for /ad links.

A signed ad link carries its fields as query parameters plus `kid` (which key
signed it) and `sig`. The signature covers every signed field present, sorted by
name, as `name=value` lines, so adding, removing or changing any of them breaks
it. Parameters the ad platform appends at click time (gdt_vid, qz_gdt, …) are
not signed fields and are never covered.

Keys come from `ROUTER_SIGNING_KEYS` as `kid:secret,kid:secret` (or from the file
`ROUTER_SIGNING_KEYS_FILE` names, as a mounted Kubernetes Secret is): the first key signs, all of them
verify, so a key is rotated by putting the new one first and
dropping the old one once links signed with it have aged out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import quote

from router.decision.recent import Recent

SIGNED_FIELDS = ("url", "src", "adv", "cmp", "ch", "exp", "kid")
"""Every /ad field the signature covers; `sig` itself is not one of them."""

DEVELOPMENT_KEYS_TEXT = "dev:adlink-router-development-key-not-for-production"


class SigningKeyError(ValueError):
    pass


MIN_SECRET_CHARS = 16


@dataclass(frozen=True, slots=True, repr=False)
class SigningKeys:
    keys: tuple[tuple[str, bytes], ...]  # (kid, secret); the first signs
    development: bool = False

    def __repr__(self) -> str:  # key ids only: a settings object in a log or traceback shows no secret
        return f"SigningKeys(kids={tuple(kid for kid, _ in self.keys)!r}, development={self.development})"

    @classmethod
    def parse(cls, text: str, *, development: bool = False, source: str = "ROUTER_SIGNING_KEYS") -> SigningKeys:
        """'kid:secret,kid:secret' -> SigningKeys, or SigningKeyError saying which entry is wrong and how.

        No message ever holds a secret or any piece of an entry that could be one: entries are called by
        their position only. Not even the key id is shown: in an entry whose kid was left out, the text
        before a ':' inside the secret would be read as one.
        """
        keys: list[tuple[str, bytes]] = []
        entries = [entry.strip() for entry in text.split(",")]
        count = sum(1 for entry in entries if entry)
        position = 0
        for entry in entries:
            if not entry:
                continue
            position += 1
            where = f"{source} entry {position} of {count}"
            kid, sep, secret = entry.partition(":")
            kid, secret = kid.strip(), secret.strip()
            if not sep:
                raise SigningKeyError(f"{where} has no ':'; write each key as kid:secret (kid first)")
            if not kid:
                raise SigningKeyError(f"{where} has no key id before ':'; write each key as kid:secret")
            if not secret:
                raise SigningKeyError(f"{where} has no secret after ':'; write each key as kid:secret")
            if not kid.isalnum() or len(kid) >= MIN_SECRET_CHARS:
                raise SigningKeyError(
                    f"{where}: the key id (before ':') must be letters and digits, shorter than "
                    f"{MIN_SECRET_CHARS} characters; write each key as kid:secret (kid first)")
            if len(secret) < MIN_SECRET_CHARS:
                raise SigningKeyError(f"{where}: the secret is shorter than {MIN_SECRET_CHARS} characters")
            if any(kid == known for known, _ in keys):
                same = next(n for n, (known, _) in enumerate(keys, 1) if known == kid)
                raise SigningKeyError(f"{where}: its key id is the same as entry {same}'s")
            keys.append((kid, secret.encode()))
        if not keys:
            raise SigningKeyError(f"{source} holds no key; expected 'kid:secret[,kid:secret…]'")
        return cls(tuple(keys), development)

    @classmethod
    def from_file(cls, path: str) -> SigningKeys:
        """Keys from a file (a mounted Kubernetes Secret): the same 'kid:secret,…' text, commas or lines
        between entries. Errors name the file, never what it holds."""
        source = f"ROUTER_SIGNING_KEYS_FILE {path}"
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read(64 * 1024 + 1)
        except OSError as err:
            raise SigningKeyError(f"{source} cannot be read: {err.strerror or type(err).__name__}") from None
        except UnicodeDecodeError:
            raise SigningKeyError(f"{source} is not UTF-8 text") from None
        if len(text) > 64 * 1024:
            raise SigningKeyError(f"{source} is larger than 64 KB; it should hold a few kid:secret entries")
        return cls.parse(text.replace("\r", "").replace("\n", ","), source=source)

    @classmethod
    def development_keys(cls) -> SigningKeys:
        return cls.parse(DEVELOPMENT_KEYS_TEXT, development=True)

    def secret(self, kid: str) -> bytes | None:
        for known, secret in self.keys:
            if known == kid:
                return secret
        return None

    @property
    def signing_kid(self) -> str:
        return self.keys[0][0]


def _canonical(fields: Mapping[str, str]) -> bytes:
    """The signed fields as `name=value` lines, each value percent-encoded whole.

    Encoded, a value can't contain the separator: otherwise `adv=acme%0Aexp%3D…` would sign the
    same bytes as `adv=acme` plus `exp=…`, and a signed field could be folded away unnoticed.
    """
    lines = [f"{name}={quote(fields[name], safe='')}" for name in sorted(fields) if name in SIGNED_FIELDS]
    return "\n".join(lines).encode()


def _mac(secret: bytes, fields: Mapping[str, str]) -> str:
    digest = hmac.new(secret, _canonical(fields), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(fields: Mapping[str, str], keys: SigningKeys) -> dict[str, str]:
    """The fields plus `kid` and `sig`, signed with the first key. Empty fields are left out."""
    signed = {name: value for name, value in fields.items() if value}
    unknown = set(signed) - set(SIGNED_FIELDS)
    if unknown:
        raise ValueError(f"cannot sign unknown field(s): {', '.join(sorted(unknown))}")
    signed["kid"] = keys.signing_kid
    signed["sig"] = _mac(keys.keys[0][1], signed)
    return signed


class Verdict(StrEnum):
    """What checking an /ad link's signature concluded for one click: recorded in its click line (`claim`),
    so a replay decides the click as the server did without holding any secret."""

    VERIFIED = "verified"
    UNSIGNED = "unsigned"  # no sig or no kid: not an ad link this router signed
    UNKNOWN_KEY = "unknown_key"  # signed with a key id these keys don't hold (an old, foreign or made-up one)
    FORGED = "forged"  # the signature does not match the fields: changed, or signed with another secret
    EXPIRED = "expired"  # past its signed expiry (or an expiry that is not a time)
    REPLAYED = "replayed"  # its click id was used before (router.decision.click)


def check(fields: Mapping[str, str], keys: SigningKeys, now: datetime | None = None) -> tuple[Verdict, str]:
    """What `fields` (signed fields plus kid and sig) make of a click, and why, in plain words."""
    sig = fields.get("sig", "")
    kid = fields.get("kid", "")
    if not sig:
        return Verdict.UNSIGNED, "no signature (sig) on the ad link"
    if not kid:
        return Verdict.UNSIGNED, "no key id (kid) on the ad link"
    secret = keys.secret(kid)
    if secret is None:
        return Verdict.UNKNOWN_KEY, f"unknown signing key id {kid[:32]!r}"
    if not _signature_matches(keys, kid, secret, sig, fields):
        return Verdict.FORGED, "signature does not match the ad fields (wrong key, or a field was changed)"
    if "exp" in fields:
        expired = expiry_passed(fields["exp"], now or datetime.now(UTC))
        if expired:
            return Verdict.EXPIRED, expired
    return Verdict.VERIFIED, f"signature verified with key {kid!r}"


def expiry_passed(exp: str, now: datetime) -> str:
    """Why a link signed to expire at `exp` (POSIX seconds) is expired at `now`, or "" while it holds."""
    try:
        expires = datetime.fromtimestamp(int(exp), UTC)
    except (ValueError, OverflowError, OSError):
        return f"expiry {exp[:20]!r} is not a time"
    return f"ad link expired at {expires.isoformat(timespec='seconds')}" if now >= expires else ""


def verify(fields: Mapping[str, str], keys: SigningKeys, now: datetime | None = None) -> tuple[bool, str]:
    """Whether `fields` carry a valid, unexpired signature, and why not (`check`, as a yes or no)."""
    verdict, reason = check(fields, keys, now)
    return verdict is Verdict.VERIFIED, reason


# Signatures already found to match their fields, with the keys that checked them: an ad's link is the
# same for every click on it (only the platform's click ids, which are not signed, change), so its HMAC is
# computed once rather than per click. Only matches are kept, so a forged signature is never looked up
# as good; a lookup compares hashes of the whole key, which tells a prober nothing about a signature's
# bytes. Expiry and replays are still checked per click. Bounded (router.decision.recent).
_MATCHED_LIMIT = 4096
_matched: Recent[tuple[object, ...], bool] = Recent(_MATCHED_LIMIT)


def _signature_matches(keys: SigningKeys, kid: str, secret: bytes, sig: str, fields: Mapping[str, str]) -> bool:
    key = (keys, kid, sig, *((name, fields[name]) for name in SIGNED_FIELDS if name in fields))
    if _matched.get(key):
        return True
    expected = _mac(secret, fields)
    # Constant time: a byte-by-byte compare would leak how much of a forged signature was right.
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        return False
    _matched.put(key, True)
    return True


class ClickReplays:
    """Ad click ids already seen with a signature, for a while: a second use is a replayed click.

    Ad platforms give every click its own id (gdt_vid, qz_gdt, click_id); a captured ad link sent
    around again carries the same one. Bounded in time and size; per process, so with several
    workers a replay is caught by the worker that saw the first use.
    """

    def __init__(self, ttl_seconds: float = 24 * 3600, max_entries: int = 200_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.replays = 0  # second uses refused since the start (router.serve.metrics)

    def __contains__(self, key: object) -> bool:
        """Whether `key` was recorded (and not yet dropped): a look that records nothing."""
        return key in self._seen

    def first_use(self, key: str, now: float) -> bool:
        """True the first time `key` is seen within the TTL (and records it); False for a replay."""
        while self._seen and (len(self._seen) >= self.max_entries or next(iter(self._seen.values())) <= now):
            self._seen.popitem(last=False)
        if key in self._seen:
            self.replays += 1
            return False
        self._seen[key] = now + self.ttl
        return True
