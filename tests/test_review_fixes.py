"""Regressions found in review: each once broke, each stays fixed."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from router.cli import main
from router.decision.apps import bundled_catalogue
from router.decision.deeplinks import app_location
from router.decision.links import parse_link
from router.decision.rules import load_rules
from router.decision.types import OS, Client, Device
from router.policy.explain_json import explain_click
from router.serve.config import Settings
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS

ITEM = "https://item.taobao.com/item.htm?id=123456"


@pytest.mark.parametrize("path", ["/go/", "/ad/", "/healthz/"])
def test_trailing_slash_is_not_a_redirect(client: TestClient, path: str) -> None:
    """/go/ is a 404, never a redirect built from a hostile Host header."""
    response = client.get(f"{path}?url={quote(ITEM, safe='')}", headers={"host": "evil.com"})
    assert response.status_code == 404
    assert "location" not in response.headers


def _client(os: OS, version: tuple[int, ...]) -> Client:
    return Client(bundled_catalogue()["browser"], (5, 0), os, version, Device.MOBILE, bot=False)


def test_harmonyos_next_gets_no_android_intent() -> None:
    """HarmonyOS NEXT (5+) runs no Android apps: the app scheme, not an intent."""
    location, _ = app_location(parse_link(ITEM), _client(OS.HARMONYOS, (5, 0)), ())
    assert location == "taobao://item.taobao.com/item.htm?id=123456"


def test_android_compatible_harmonyos_gets_intent() -> None:
    """HarmonyOS 2-4 (version unknown in its Android-style UA) runs Android apps: intent with fallback."""
    location, _ = app_location(parse_link(ITEM), _client(OS.HARMONYOS, ()), ())
    assert location is not None and location.startswith("intent://")


def test_rollouts_replay_from_the_click_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Replaying logged clicks (with their visitor) gives the server's decision, rollouts included."""
    (tmp_path / "r.yaml").write_text("rules:\n  - {id: half, when: {app: browser, rollout: 50}, then: web}\n"
                                     "default: landing\n")
    settings = Settings(rules_dir=tmp_path, signing_keys=TEST_KEYS)
    rules = load_rules(tmp_path)
    http = TestClient(create_app(settings, rules), follow_redirects=False)
    served = []
    with caplog.at_level(logging.INFO, logger="router.clicks"):
        for n in range(40):
            ua = uas.SAFARI_IOS.replace("Mobile/15E148", f"Mobile/15E{n}")
            http.cookies.clear()
            served.append(http.get(f"/go?url={quote(ITEM, safe='')}", headers={"user-agent": ua}).status_code)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "router.clicks"]
    assert len(records) == 40 and {302, 200} <= set(served)
    for record, status in zip(records, served, strict=True):
        at = datetime.fromisoformat(record["at"])
        replayed = explain_click(record["request"], record["ua"], at, settings, rules, record["visitor"])
        assert replayed["status"] == status


def test_batch_line_with_bad_types_is_reported_in_place(tmp_path: Path) -> None:
    """A non-string 'at' or 'ua' is an error for that line, not a crash of the batch."""
    clicks = tmp_path / "c.jsonl"
    clicks.write_text(json.dumps({"request": "/go?url=x", "at": 1700000000}) + "\n"
                      + json.dumps({"request": "/go?url=x", "ua": 5}) + "\n")
    out = io.StringIO()
    assert main(["explain", "--batch", str(clicks)], out) == 0
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["line"] == 1 and "is not ISO 8601 text" in first["error"]
    assert second["line"] == 2 and "must be strings" in second["error"]


def test_forward_params_keep_their_case() -> None:
    """ROUTER_FORWARD_PARAMS=clickId forwards clickId, not clickid."""
    settings = Settings.from_env({"ROUTER_FORWARD_PARAMS": "clickId, gdt_vid"})
    assert settings.forward_params == ("clickId", "gdt_vid")


def test_token_only_moments_landing_still_offers_the_token(client: TestClient) -> None:
    """With no link at all, the Moments page shows the code: it is the only way forward."""
    url = quote("复制这段描述￥AbCd1234￥后到👉淘♂寳♀👈", safe="")
    page = client.get(f"/go?url={url}&from=timeline", headers={"user-agent": uas.WECHAT_IOS}).text
    assert "￥AbCd1234￥" in page


def test_ua_tables_setting() -> None:
    assert Settings.from_env({}).ua_tables_at_startup is True  # by default: no first click waits for them
    assert Settings.from_env({"ROUTER_UA_TABLES": "Lazy"}).ua_tables_at_startup is False
    assert Settings.from_env({"ROUTER_UA_TABLES": "Startup"}).ua_tables_at_startup is True
    with pytest.raises(ValueError, match="ROUTER_UA_TABLES must be 'lazy' or 'startup', got 'eager'"):
        Settings.from_env({"ROUTER_UA_TABLES": "eager"})
