"""Signed /ad links: good, tampered, unknown key, rotated key; and the `sign` command."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from router.cli import main
from router.decision.signing import SigningKeyError, SigningKeys, sign, verify
from router.serve.config import Settings
from tests.conftest import TEST_KEYS

FIELDS = {"url": "https://item.taobao.com/item.htm?id=1", "src": "unidesk", "adv": "a1", "cmp": "c9"}


def test_good_signature_verifies() -> None:
    """A link signed with the first key verifies, and says which key."""
    ok, reason = verify(sign(FIELDS, TEST_KEYS), TEST_KEYS)
    assert ok, reason
    assert reason == "signature verified with key 'k2'"


@pytest.mark.parametrize("field", ["url", "src", "adv", "cmp"])
def test_tampered_field_fails(field: str) -> None:
    """Changing any signed field breaks the signature."""
    signed = sign(FIELDS, TEST_KEYS)
    signed[field] = signed[field] + "x"
    assert verify(signed, TEST_KEYS) == (
        False, "signature does not match the ad fields (wrong key, or a field was changed)"
    )


def test_added_signed_field_fails() -> None:
    """Adding a signed field the signer did not put there (e.g. ch=ad) breaks the signature."""
    signed = sign({k: v for k, v in FIELDS.items() if k != "cmp"}, TEST_KEYS)
    signed["ch"] = "ad"
    assert verify(signed, TEST_KEYS)[0] is False


def test_unsigned_extra_params_do_not_matter() -> None:
    """Click ids appended by the ad platform are not signed fields."""
    signed = sign(FIELDS, TEST_KEYS) | {"gdt_vid": "wx123", "weixinadinfo": "1.2.0.3"}
    assert verify(signed, TEST_KEYS)[0] is True


def test_unknown_kid_fails() -> None:
    """A key id the router doesn't know is refused by name."""
    signed = sign(FIELDS, TEST_KEYS) | {"kid": "k9"}
    assert verify(signed, TEST_KEYS) == (False, "unknown signing key id 'k9'")


@pytest.mark.parametrize(("drop", "reason"), [("sig", "no signature (sig)"), ("kid", "no key id (kid)")])
def test_missing_signature_fails(drop: str, reason: str) -> None:
    """No sig or no kid: not trusted, and the reason says which."""
    signed = sign(FIELDS, TEST_KEYS)
    del signed[drop]
    ok, why = verify(signed, TEST_KEYS)
    assert not ok and why.startswith(reason)


def test_rotation_old_key_still_verifies() -> None:
    """After rotation (new key first), links signed with the old key still verify."""
    old = SigningKeys.parse("k1:first-secret-0123456789")
    signed = sign(FIELDS, old)
    assert signed["kid"] == "k1"
    assert verify(signed, TEST_KEYS) == (True, "signature verified with key 'k1'")


def test_dropped_key_no_longer_verifies() -> None:
    """Once the old key is removed, its links are unknown-key."""
    signed = sign(FIELDS, SigningKeys.parse("k1:first-secret-0123456789"))
    assert verify(signed, SigningKeys.parse("k2:second-secret-0123456789"))[0] is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("nokey", "entry 1 of 1 has no ':'"),
        ("k1:short", r"entry 1 of 1: the secret is shorter than 16 characters"),
        ("k1:aaaaaaaaaaaaaaaaaa,k1:bbbbbbbbbbbbbbbbbbbb", r"entry 2 of 2: its key id is the same as entry 1's"),
        ("k-1:aaaaaaaaaaaaaaaaaa", "entry 1 of 1: the key id .* must be letters and digits"),
    ],
)
def test_bad_key_configuration(text: str, message: str) -> None:
    """ROUTER_SIGNING_KEYS mistakes are named: which entry, and what is wrong with it."""
    with pytest.raises(SigningKeyError, match=message):
        SigningKeys.parse(text)


SECRET = "Zq7-unmistakable_SECRET+value/42"  # has characters a key id can't, and is long enough


@pytest.mark.parametrize(
    "text",
    [
        SECRET,  # the kid forgotten
        f" {SECRET} ",
        f":{SECRET}",  # an empty kid
        f"k1 {SECRET}",  # a space for the colon
        f"{SECRET}:k1",  # the wrong way round
        f"{SECRET}:",  # the kid forgotten, the colon kept
        f"k-1:{SECRET}",  # a kid with a character kids can't have
        f"k1:{SECRET},k1:{SECRET}",  # twice
        f"k1:{SECRET[:10]}",  # too short
        f"k1:{SECRET},{SECRET}",  # a second entry without a kid
        f"k1={SECRET}",  # '=' for ':'
        "AbCdEfGhIjKlMnOp0123:k1",  # a valid-looking secret written first
        "Zx9Qw8Er7Ty6Ui5:Op4As3Df",  # the kid left out of a secret that holds a ':'
    ],
)
def test_no_key_error_shows_a_secret(text: str) -> None:
    """Whatever the mistake, the message names the entry and says what to write, and holds no piece of a
    secret (no 8 characters in a row of it)."""
    with pytest.raises(SigningKeyError) as raised:
        SigningKeys.parse(text)
    message = str(raised.value)
    for secret in (SECRET, "AbCdEfGhIjKlMnOp0123", "Zx9Qw8Er7Ty6Ui5:Op4As3Df"):
        assert not any(secret[i:i + 8] in message for i in range(len(secret) - 7)), message
    assert "ROUTER_SIGNING_KEYS" in message


def test_settings_and_keys_print_no_secret() -> None:
    keys = SigningKeys.parse(f"k1:{SECRET}")
    assert SECRET not in repr(keys) and "k1" in repr(keys)
    settings = Settings.from_env({"ROUTER_SIGNING_KEYS": f"k1:{SECRET}"})
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_keys_from_a_file(tmp_path: Path) -> None:
    """ROUTER_SIGNING_KEYS_FILE, as a mounted Secret: entries on lines (or comma-separated); errors name
    the file and never its content; both variables set is a mistake."""
    path = tmp_path / "keys"
    path.write_text(f"k2:{SECRET}\nk1:first-secret-0123456789\n")
    settings = Settings.from_env({"ROUTER_SIGNING_KEYS_FILE": str(path)})
    assert [kid for kid, _ in settings.signing_keys.keys] == ["k2", "k1"]
    assert settings.signing_keys.secret("k2") == SECRET.encode()
    path.write_text(f"{SECRET}\n")
    with pytest.raises(SigningKeyError, match=f"ROUTER_SIGNING_KEYS_FILE {path} entry 1 of 1 has no ':'") as raised:
        Settings.from_env({"ROUTER_SIGNING_KEYS_FILE": str(path)})
    assert SECRET[:8] not in str(raised.value)
    with pytest.raises(SigningKeyError, match="cannot be read"):
        Settings.from_env({"ROUTER_SIGNING_KEYS_FILE": str(tmp_path / "missing")})
    with pytest.raises(SigningKeyError, match="both set; set one of them"):
        Settings.from_env({"ROUTER_SIGNING_KEYS_FILE": str(path), "ROUTER_SIGNING_KEYS": f"k1:{SECRET}"})


def test_a_bad_key_stops_serve_with_no_secret_on_screen(tmp_path: Path) -> None:
    """The server refuses to start with one sentence, exit status 2, and no secret in anything it printed."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ROUTER_SIGNING_KEYS": SECRET}
    result = subprocess.run([sys.executable, "-m", "router", "serve", "--port", "0"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "entry 1 of 1 has no ':'" in result.stdout  # a JSON line, like everything serve writes
    assert SECRET[:8] not in result.stdout + result.stderr


def test_sign_command_prints_verifiable_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sign` prints a /ad link with --base, every field signed."""
    monkeypatch.setenv("ROUTER_SIGNING_KEYS", "k2:second-secret-0123456789,k1:first-secret-0123456789")
    out = io.StringIO()
    code = main(["sign", "--url", FIELDS["url"], "--source", "unidesk", "--advertiser", "a1",
                 "--campaign", "c9", "--base", "https://go.example.com/"], out)
    assert code == 0
    link = out.getvalue().strip()
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "go.example.com", "/ad")
    fields = dict(parse_qsl(parts.query))
    assert fields["url"] == FIELDS["url"] and fields["src"] == "unidesk" and fields["kid"] == "k2"
    assert verify(fields, TEST_KEYS)[0] is True


def test_sign_command_refuses_foreign_url(capsys: pytest.CaptureFixture[str]) -> None:
    """`sign` won't sign a destination outside the allowlist."""
    code = main(["sign", "--url", "https://evil.example/", "--source", "x", "--advertiser", "a"], io.StringIO())
    assert code == 2
    assert "error: --url:" in capsys.readouterr().err


def test_sign_command_warns_about_development_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without ROUTER_SIGNING_KEYS, `sign` refuses unless told --development-key, and then says loudly it
    used the development key (tests/test_signing_keys_required.py has the sentences)."""
    monkeypatch.delenv("ROUTER_SIGNING_KEYS", raising=False)
    monkeypatch.delenv("ROUTER_SIGNING_KEYS_FILE", raising=False)
    argv = ["sign", "--url", FIELDS["url"], "--source", "unidesk", "--advertiser", "a1"]
    assert main(argv, io.StringIO()) == 2
    assert "--development-key" in capsys.readouterr().err
    assert main([*argv, "--development-key"], io.StringIO()) == 0
    assert "PUBLIC development key" in capsys.readouterr().err


def test_expired_link_loses_ad_privileges() -> None:
    """An `exp` in the past: the signature still matches, but the link is not trusted, and says why."""
    from datetime import UTC, datetime

    signed = sign(FIELDS | {"exp": "1767225600"}, TEST_KEYS)  # 2026-01-01T00:00:00Z
    assert verify(signed, TEST_KEYS, datetime(2025, 12, 31, tzinfo=UTC))[0] is True
    assert verify(signed, TEST_KEYS, datetime(2026, 1, 1, tzinfo=UTC)) == (
        False, "ad link expired at 2026-01-01T00:00:00+00:00")


def test_expiry_is_signed() -> None:
    """Moving `exp` later breaks the signature."""
    signed = sign(FIELDS | {"exp": "1767225600"}, TEST_KEYS) | {"exp": "1893456000"}
    assert verify(signed, TEST_KEYS)[0] is False


def test_sign_command_expires(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`sign --expires` signs an expiry; one in the past is refused."""
    monkeypatch.setenv("ROUTER_SIGNING_KEYS", "k2:second-secret-0123456789")
    out = io.StringIO()
    assert main(["sign", "--url", FIELDS["url"], "--source", "s", "--advertiser", "a",
                 "--expires", "2099-01-01T00:00:00+08:00"], out) == 0
    assert "&exp=4070880000&" in out.getvalue()
    assert main(["sign", "--url", FIELDS["url"], "--source", "s", "--advertiser", "a",
                 "--expires", "2020-01-01T00:00:00+08:00"], io.StringIO()) == 2
    assert "is in the past" in capsys.readouterr().err


def test_replayed_click_id_loses_ad_privileges(client) -> None:  # type: ignore[no-untyped-def]
    """The same signed ad link with the same click id a second time is served as an unknown-channel click."""
    from urllib.parse import urlencode

    from tests import uas

    query = urlencode(sign(FIELDS, TEST_KEYS)) + "&gdt_vid=wx-replay-001"
    first = client.get(f"/ad?{query}", headers={"user-agent": uas.WECHAT_IOS})
    again = client.get(f"/ad?{query}", headers={"user-agent": uas.WECHAT_IOS})
    other = client.get(f"/ad?{urlencode(sign(FIELDS, TEST_KEYS))}&gdt_vid=wx-replay-002",
                       headers={"user-agent": uas.WECHAT_IOS})
    assert first.status_code == 302 and first.headers["location"].startswith("taobao://")
    assert again.status_code == 200 and "location" not in again.headers  # landing: no ad privileges
    assert other.status_code == 302  # a new click id is a new click


def test_replay_window_is_bounded() -> None:
    """Click ids are forgotten after the TTL and beyond the size bound."""
    from router.decision.signing import ClickReplays

    replays = ClickReplays(ttl_seconds=10, max_entries=2)
    assert replays.first_use("a", 0) and not replays.first_use("a", 5)
    assert replays.first_use("a", 11)  # expired, so new again
    assert replays.first_use("b", 12) and replays.first_use("c", 12)
    assert replays.first_use("a", 12)  # pushed out by the size bound


@pytest.mark.parametrize("folded_into", ["adv", "cmp"])
def test_a_signed_field_cannot_be_folded_into_another(folded_into: str) -> None:
    """`adv=acme%0Aexp%3D…` must not verify as `adv=acme` + `exp=…`: an expiry or a channel can't be dropped."""
    fields = {"url": FIELDS["url"], "src": "unidesk", "adv": "acme", "cmp": "c1", "exp": "1700000000"}
    signed = sign(fields, TEST_KEYS)
    folded = dict(signed)
    folded[folded_into] = f"{folded[folded_into]}\nexp=1700000000"
    del folded["exp"]
    assert verify(folded, TEST_KEYS)[0] is False


def test_a_signature_checked_once_still_fails_for_changed_fields_or_other_keys() -> None:
    """Matched signatures are remembered (an ad's link repeats on every click); the memory must never vouch
    for a changed field, a signature moved onto other fields, or the same key id with another secret."""
    fields = sign({"url": "https://item.taobao.com/item.htm?id=1", "adv": "42"}, TEST_KEYS)
    for _ in range(3):
        assert verify(fields, TEST_KEYS)[0]
    assert not verify({**fields, "adv": "43"}, TEST_KEYS)[0]
    assert not verify({**fields, "cmp": "spring"}, TEST_KEYS)[0]
    other = sign({"url": "https://item.taobao.com/item.htm?id=2", "adv": "42"}, TEST_KEYS)
    assert not verify({**other, "sig": fields["sig"]}, TEST_KEYS)[0]
    kid = TEST_KEYS.signing_kid
    same_kid_other_secret = SigningKeys.parse(f"{kid}:another-secret-0123456789")
    assert not verify(fields, same_kid_other_secret)[0]


def test_an_ad_read_once_still_checks_each_click() -> None:
    """/ad queries are read once per ad (router.decision.click); each click still gets its own click ids,
    its own replay check and its own expiry check, and any change to the fixed part is a new read."""
    from datetime import UTC, datetime
    from urllib.parse import urlencode

    from router.decision.click import BadClick, read_click
    from router.decision.signing import ClickReplays
    from router.decision.types import Channel
    from router.serve.config import Settings, bundled_rules_dir
    from tests import uas

    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)
    ad = urlencode(sign(FIELDS | {"exp": "1767225600"}, TEST_KEYS))  # expires 2026-01-01T00:00:00Z
    replays = ClickReplays()
    before = datetime(2025, 12, 31, tzinfo=UTC)

    def read(query: str, at: datetime = before):  # type: ignore[no-untyped-def]
        return read_click("/ad", query, uas.WECHAT_IOS, at=at, settings=settings, replays=replays)

    first = read(f"gdt_vid=wx-1&{ad}&qz_gdt=q-1")
    second = read(f"{ad}&gdt_vid=wx-2")
    assert (first.channel, first.forward) == (Channel.AD, (("gdt_vid", "wx-1"), ("qz_gdt", "q-1")))
    assert (second.channel, second.forward) == (Channel.AD, (("gdt_vid", "wx-2"),))
    replayed = read(f"{ad}&gdt_vid=wx-2")
    assert replayed.channel is Channel.UNKNOWN and replayed.ad is not None and "already used" in replayed.ad.reason
    expired = read(f"{ad}&gdt_vid=wx-3", at=datetime(2026, 1, 2, tzinfo=UTC))
    assert expired.channel is Channel.UNKNOWN and expired.ad is not None and "expired" in expired.ad.reason
    tampered = read(ad.replace("adv=", "adv=9") + "&gdt_vid=wx-4")
    assert tampered.channel is Channel.UNKNOWN
    with pytest.raises(BadClick, match="parameter 'adv' is given 2 times"):
        read(f"{ad}&adv=other&gdt_vid=wx-5")
    with pytest.raises(BadClick, match="too many query parameters"):
        read(ad + "".join(f"&gdt_vid=wx-{n}" for n in range(100)))
    # An encoded click id name, and a forwarded name that is also a control parameter: read as they came.
    encoded = read(f"qz_gdt=q-6&{ad}&gdt%5Fvid=wx-6")
    assert encoded.forward == (("qz_gdt", "q-6"), ("gdt_vid", "wx-6"))
    steering = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, forward_params=("gdt_vid", "ch"))
    stamped = read_click("/ad", f"{ad}&gdt_vid=wx-7", uas.WECHAT_IOS, at=before, settings=steering)
    assert stamped.forward == (("gdt_vid", "wx-7"),) and stamped.channel is Channel.AD
