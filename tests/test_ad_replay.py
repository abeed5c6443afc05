"""Ad clicks replayed as the server judged them: a click line records its ad claim's verdict, and `rules diff`
and `explain --batch` read it back, so a policy owner without the production signing key sees the real
change; a line that can't be replayed faithfully is counted and named, never decided some other way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest

from router.decision.signing import SigningKeys, sign
from tests import uas
from tests.servers import Server

PRODUCTION_KEYS = "prod:production-secret-0123456789"
OTHER_KEYS = "old:a-retired-secret-0123456789"
ITEM = "https://item.taobao.com/item.htm?id=1"
SHIPPED = (Path(__file__).resolve().parent.parent / "rules" / "default.yaml").read_text(encoding="utf-8")
# The change under review: advertiser 1001's WeChat ads open the app, no longer the landing page.
AD_1001_APP = """  - id: wechat-ad-1001-app
    description: Advertiser 1001's WeChat ads open the app.
    when: {app: wechat, channel: ad, advertiser: "1001"}
    then: app

"""


def _ad(keys: str, *, adv: str = "1001", expires: int | None = None, click_id: str = "") -> str:
    fields = {"url": ITEM, "src": "gdt", "adv": adv, "exp": str(expires) if expires else ""}
    query = urlencode(sign(fields, SigningKeys.parse(keys)), quote_via=quote)
    return f"/ad?{query}" + (f"&gdt_vid={click_id}" if click_id else "")


def _forged() -> str:
    """A production-signed link whose advertiser was changed after signing."""
    return _ad(PRODUCTION_KEYS, adv="2002", click_id="f1").replace("adv=2002", "adv=1001")


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A day of clicks served with the production key: what the server printed, click lines and all."""
    server = Server(env={"ROUTER_SIGNING_KEYS": PRODUCTION_KEYS}).wait_ready()
    clicks = [
        *(_ad(PRODUCTION_KEYS, click_id=f"v{n}") for n in range(3)),  # three real ad clicks
        _ad(PRODUCTION_KEYS, click_id="v0"),  # the first one's click id again: a replay
        _forged(),
        _ad(PRODUCTION_KEYS, expires=int(time.time()) - 60, click_id="e1"),
        _ad(OTHER_KEYS, click_id="k1"),  # a key this router does not hold
        f"/ad?url={quote(ITEM, safe='')}&src=gdt&adv=1001&gdt_vid=u1",  # no signature at all
        f"/go?url={quote(ITEM, safe='')}&from=groupmessage",
    ]
    try:
        with httpx.Client(base_url=server.base, headers={"user-agent": uas.WECHAT_IOS}) as client:
            for click in clicks:
                assert client.get(click).status_code in (200, 302)
    finally:
        output = server.stop()
    path = tmp_path_factory.mktemp("day") / "clicks.jsonl"
    path.write_text(output, encoding="utf-8")
    return path


def _click_lines(path: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("type") == "click"]


def _without_key() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTER_")}
    return {**env, "PYTHONIOENCODING": "utf-8"}


def _router(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "router", *args], capture_output=True, text=True, timeout=120,
                          env=_without_key())


def test_each_ad_verdict_is_in_its_click_line(day: Path) -> None:
    """Verified, replayed, forged, expired and unknown-key ad clicks are told apart by their lines' claim."""
    claims = [line.get("claim") for line in _click_lines(day)]
    assert [claim and claim["verdict"] for claim in claims] == [  # type: ignore[index]
        "verified", "verified", "verified", "replayed", "forged", "expired", "unknown_key", "unsigned", None]
    verified, replayed, forged, expired, unknown = claims[0], claims[3], claims[4], claims[5], claims[6]
    assert verified == {"source": "gdt", "advertiser": "1001", "campaign": "", "verified": True,
                        "reason": "signature verified with key 'prod'", "verdict": "verified", "channel": "",
                        "kid": "prod"}
    assert "click id gdt_vid=v0 was already used" in replayed["reason"]  # type: ignore[index]
    assert forged["verified"] is False and "does not match" in forged["reason"]  # type: ignore[index]
    assert "expired at" in expired["reason"]  # type: ignore[index]
    assert unknown["kid"] == "old" and "unknown signing key id 'old'" in unknown["reason"]  # type: ignore[index]
    assert "no signature (sig)" in claims[7]["reason"]  # type: ignore[index]
    assert {line["channel"] for line in _click_lines(day)[3:8]} == {"unknown"}
    assert PRODUCTION_KEYS.split(":")[1] not in day.read_text(encoding="utf-8")


def _rule_sets(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, text in ((old, SHIPPED), (new, SHIPPED.replace("  - id: wechat-ad-other-landing",
                                                               AD_1001_APP + "  - id: wechat-ad-other-landing"))):
        folder.mkdir()
        (folder / "default.yaml").write_text(text, encoding="utf-8")
    return old, new


def test_rules_diff_without_the_key_shows_the_real_change(day: Path, tmp_path: Path) -> None:
    """Without the production key, the three verified clicks still move landing → app; the replayed, forged,
    expired and unknown-key ones stay where the server put them (the unknown channel)."""
    old, new = _rule_sets(tmp_path)
    done = _router("rules", "diff", str(old), str(new), "--clicks", str(day))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "clicks: 9 read, 0 unreadable lines, 0 refused before any rule, 9 decided by both" in done.stdout
    assert "action changes: 3 of 9 (33.3%)" in done.stdout
    assert "ad            wechat      landing → app" in done.stdout
    assert "WARNING" not in done.stdout


def test_lines_without_their_claim_are_named_not_redecided(day: Path, tmp_path: Path) -> None:
    """Lines recorded before claims were written: the ones signed with a key not held here are left out and
    named; none of them is silently decided as `unknown`."""
    stripped = tmp_path / "old-format.jsonl"
    stripped.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "claim"}) + "\n"
                                for line in _click_lines(day)), encoding="utf-8")
    old, new = _rule_sets(tmp_path)
    done = _router("rules", "diff", str(old), str(new), "--clicks", str(stripped))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING: 7 clicks could not be replayed as the server decided them" in done.stdout
    assert ("line 1: an /ad click recorded without its claim, signed with key 'prod', which the keys here "
            "don't hold") in done.stdout
    assert "line 7: an /ad click recorded without its claim, signed with key 'old'" in done.stdout
    assert "7 not replayed, 2 decided by both" in done.stdout
    assert "action changes: 0 of 2 (0.0%)" in done.stdout  # the unsigned and the /go click: the only ones decided
    # The unsigned one needs no key to be judged again: decided, and said to be.
    assert "note: 1 /ad click recorded without its claim: the signature was checked here again" in done.stdout

    batch = _router("explain", "--batch", str(stripped))
    results = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [result.get("not_replayed", "")[:35] for result in results[:2]] == [
        "an /ad click recorded without its c"] * 2
    assert "7 click lines could not be replayed" in batch.stderr


def test_a_line_without_its_claim_is_checked_again_with_the_keys_at_hand(tmp_path: Path) -> None:
    """An old line signed with a key held here is re-verified, and the output says so."""
    line = {"request": _ad(PRODUCTION_KEYS, click_id="x1"), "ua": uas.WECHAT_IOS, "at": "2026-12-07T10:00:00Z"}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    old, new = _rule_sets(tmp_path)
    done = subprocess.run([sys.executable, "-m", "router", "rules", "diff", str(old), str(new), "--clicks", str(path)],
                          capture_output=True, text=True, timeout=120,
                          env={**_without_key(), "ROUTER_SIGNING_KEYS": PRODUCTION_KEYS})
    assert "note: 1 /ad click recorded without its claim: the signature was checked here again" in done.stdout
    assert "action changes: 1 of 1 (100.0%)" in done.stdout


def test_explain_batch_replays_the_verdicts(day: Path) -> None:
    done = _router("explain", "--batch", str(day))
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [result["ad"]["verdict"] if result.get("ad") else None for result in results] == [
        "verified", "verified", "verified", "replayed", "forged", "expired", "unknown_key", "unsigned", None]
    assert [result["rule"] for result in results[:4]] == ["wechat-ad-other-landing"] * 3 + [
        "wechat-moments-unknown-landing"]


def test_a_claim_that_is_not_its_requests_is_not_replayed(day: Path, tmp_path: Path) -> None:
    """A line whose claim was edited to another advertiser is named, not decided on either set of fields."""
    lines = _click_lines(day)
    lines[0]["claim"]["advertiser"] = "9999"  # type: ignore[index]
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    old, new = _rule_sets(tmp_path)
    done = _router("rules", "diff", str(old), str(new), "--clicks", str(edited), "--format", "json")
    body = json.loads(done.stdout)
    assert body["not_replayed"] == [{"line": 1, "why": "its recorded claim's adv differ from the request's"}]
    assert body["changed"] == 2 and body["decided"] == 8


def test_a_verified_claim_expires_when_the_replay_is_moved_past_its_links_expiry() -> None:
    """`rules diff --at` replays a click as if it happened then: a link signed to expire before that is
    expired, read from its signed `exp` (no key needed), as the server would have judged it then."""
    from datetime import UTC, datetime, timedelta

    from router.decision.apps import bundled_catalogue
    from router.decision.click import ClickSettings
    from router.decision.types import AdClaim
    from router.policy.replay import RecordedClick, read_recorded

    at = datetime(2026, 12, 7, 10, tzinfo=UTC)
    request = _ad(PRODUCTION_KEYS, expires=int((at + timedelta(days=1)).timestamp()), click_id="z1")
    claim = AdClaim("gdt", "1001", "", True, "signature verified with key 'prod'", "verified", "", "prod")
    click = RecordedClick(1, request, uas.WECHAT_IOS, at, "visitor-1", (), claim)
    settings, apps = ClickSettings(), bundled_catalogue()
    assert read_recorded(click, settings, apps).ad.verdict == "verified"  # type: ignore[union-attr]
    later = read_recorded(click, settings, apps, at=at + timedelta(days=30))
    assert later.ad is not None and later.ad.verdict == "expired" and not later.ad.verified
    assert later.channel.value == "unknown" and "expired at 2026-12-08T10:00:00+00:00" in later.channel_reason
