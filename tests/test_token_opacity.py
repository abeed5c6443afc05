"""Click tokens reveal nothing and cannot be made or changed without the keys (router.serve.click_token)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import string

from router.decision.signing import SigningKeys
from router.serve.click_token import MAX_TOKEN_CHARS, TOKEN_TTL_SECONDS, ClickToken, make_token, read_token, token_of
from tests.conftest import TEST_KEYS

NOW = 1_800_000_000.0
CLICK = ClickToken(click="clk-5d1e9b", rule="spring-pilot-7f3a", rules="rv-88c2e417", arms="spring-pilot-7f3a:in",
                   app="wechat", expires=int(NOW) + TOKEN_TTL_SECONDS, visitor="vis-3b9f0c2a")
SECRETS = [CLICK.click, CLICK.rule, CLICK.rules, CLICK.arms, CLICK.app, CLICK.visitor, "spring-pilot", "5d1e9b",
           "88c2e417", ":in", str(CLICK.expires)]


def decodings(part: str) -> list[bytes]:
    """Every reading of a part as base64 (either alphabet), from each of its first 4 characters (any
    alignment), with padding added."""
    found = [part.encode()]
    for start in range(4):
        text = part[start:]
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(decode(text + "=" * (-len(text) % 4)))
    return found


def test_a_token_shows_none_of_its_fields() -> None:
    for made in (token_of(CLICK, TEST_KEYS), make_token(TEST_KEYS, CLICK.click, CLICK.rule, CLICK.rules,
                                                         CLICK.arms, CLICK.app, CLICK.expires)):
        assert read_token(made, TEST_KEYS, NOW) is not None
        seen = [made.encode(), *(data for part in made.split(".") for data in decodings(part))]
        for data in seen:
            for secret in SECRETS:
                assert secret.encode() not in data, (secret, made)
                assert secret.encode("utf-16-le") not in data, (secret, made)


def test_a_token_reads_back_with_its_visitor() -> None:
    assert read_token(token_of(CLICK, TEST_KEYS), TEST_KEYS, NOW) == CLICK
    odd = ClickToken("c\n1%", "r%0A", "v", "a:in,b%2Cc:out", "qq", int(NOW) + 60, "vis\nitor%25")
    assert read_token(token_of(odd, TEST_KEYS), TEST_KEYS, NOW) == odd
    # Callers that give no visitor, positionally as router.serve.clicks does, read back an empty one.
    plain = make_token(TEST_KEYS, "c", "r", "v", "", "wechat", int(NOW) + 60)
    assert read_token(plain, TEST_KEYS, NOW) == ClickToken("c", "r", "v", "", "wechat", int(NOW) + 60)


def test_any_changed_character_breaks_it() -> None:
    made = token_of(CLICK, TEST_KEYS)
    kid, sealed = made.split(".")
    alphabet = string.ascii_letters + string.digits + "-_+/=.!"
    for at, char in enumerate(sealed):
        for other in alphabet:
            if other != char:
                changed = f"{kid}.{sealed[:at]}{other}{sealed[at + 1:]}"
                assert read_token(changed, TEST_KEYS, NOW) is None, (at, other)
    for broken in (f"{kid}.{sealed[:-1]}", f"{kid}.{sealed[:-4]}", f"{kid}.{sealed}AAAA", f"{kid}.{sealed}=",
                   f"{kid}.{sealed[4:]}", f"{kid}.{sealed[:16]}", f"{kid}.", f"{kid}{sealed}", made + ".x"):
        assert read_token(broken, TEST_KEYS, NOW) is None, broken


def test_another_key_or_key_id_is_refused() -> None:
    made = token_of(CLICK, TEST_KEYS)
    kid, sealed = made.split(".")
    assert kid == TEST_KEYS.signing_kid  # the key id is the one thing in clear
    other_kid = next(k for k, _ in TEST_KEYS.keys if k != kid)
    assert read_token(f"{other_kid}.{sealed}", TEST_KEYS, NOW) is None  # a listed key, not the one that sealed it
    assert read_token(f"nokey.{sealed}", TEST_KEYS, NOW) is None
    same_kid = SigningKeys.parse(f"{kid}:another-secret-0123456789")
    assert read_token(made, same_kid, NOW) is None
    assert read_token(token_of(CLICK, same_kid), TEST_KEYS, NOW) is None
    # A key that only verifies (listed after the first) still reads what it sealed when it was first.
    rotated = SigningKeys.parse(f"new:a-newer-secret-0123456789,{kid}:{TEST_KEYS.keys[0][1].decode()}")
    assert read_token(made, rotated, NOW) == CLICK


def test_an_expired_token_is_refused() -> None:
    made = token_of(CLICK, TEST_KEYS)
    assert read_token(made, TEST_KEYS, CLICK.expires - 1) == CLICK
    assert read_token(made, TEST_KEYS, CLICK.expires) is None
    assert read_token(made, TEST_KEYS, CLICK.expires + 3600) is None


def test_two_tokens_for_the_same_click_differ() -> None:
    made = {token_of(CLICK, TEST_KEYS) for _ in range(100)}
    assert len(made) == 100
    assert all(read_token(one, TEST_KEYS, NOW) == CLICK for one in made)


def test_a_token_of_the_former_signed_format_is_refused() -> None:
    """`<base64url fields>.<kid>.<mac>`, an HMAC-SHA256 over a purpose and the fields, as tokens once were."""
    kid, secret = TEST_KEYS.keys[0]
    fields = "\n".join([CLICK.click, CLICK.rule, CLICK.rules, CLICK.arms, CLICK.app, str(CLICK.expires)]).encode()
    mac = hmac.new(secret, b"adlink-router click-token v1\n" + fields, hashlib.sha256).digest()[:16]

    def encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    assert read_token(f"{encode(fields)}.{kid}.{encode(mac)}", TEST_KEYS, NOW) is None
    for junk in ("a.b.c", f"{kid}.b.c", "", ".", kid, "x" * (MAX_TOKEN_CHARS + 1), f"{kid}.\u00e9\u00e9\u00e9\u00e9"):
        assert read_token(junk, TEST_KEYS, NOW) is None, junk


def test_a_token_is_url_safe_and_short() -> None:
    long_click = ClickToken("c" * 64, "r" * 64, "v" * 40, ",".join(f"rollout-{n}:in" for n in range(8)), "browser",
                            int(NOW) + TOKEN_TTL_SECONDS, "v" * 22)
    for click in (CLICK, long_click, ClickToken("", "", "", "", "", 0)):
        made = token_of(click, TEST_KEYS)
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", made), made
        assert len(made) <= MAX_TOKEN_CHARS
    assert read_token(token_of(long_click, TEST_KEYS), TEST_KEYS, NOW) == long_click


def test_the_length_tells_little() -> None:
    """Sealed bytes come in blocks: fields a few characters longer or shorter make the same length."""
    lengths = {len(token_of(ClickToken("clk-5d1e9b", rule, "rv-1", "", "wechat", int(NOW) + 60), TEST_KEYS))
               for rule in ("a", "ab", "abcd", "abcdef")}
    assert len(lengths) == 1


def test_a_click_in_a_dozen_rollouts_still_gets_a_token_a_beacon_can_carry() -> None:
    from router.serve.outcomes import MAX_BODY

    arms = ",".join(f"spring-sale-pilot-rule-number-{n:02d}:in" for n in range(12))
    made = make_token(TEST_KEYS, "a" * 24, "spring-sale-pilot-rule-number-00", "5561cf19d5ac", arms, "wechat",
                      2_000_000_000, "v" * 22)
    assert len(made) <= MAX_TOKEN_CHARS and len(f"t={made}&e=fallback_web") <= MAX_BODY
    found = read_token(made, TEST_KEYS, 1_999_999_000)
    assert found is not None and found.arms == arms
