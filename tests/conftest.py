"""Shared fixtures: the shipped rules, test signing keys, a TestClient that never follows redirects, and a
headless Chromium (Debian's `chromium`, driven by Playwright) for the browser tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from router.decision.rules import RuleSet, load_rules
from router.decision.signing import SigningKeys
from router.serve.config import Settings, bundled_rules_dir
from router.serve.web import create_app
from tests.servers import debian_tool

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
]


# Servers the tests start read ROUTER_DATABASE_URL, whose default is an SQLite file in the user's data
# directory: the whole run gets a data directory of its own, so no test writes into the home directory.
if not os.environ.get("ROUTER_DATABASE_URL"):
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="adlink-test-data-")

TEST_KEYS = SigningKeys.parse("k2:second-secret-0123456789,k1:first-secret-0123456789")


@pytest.fixture(scope="session")
def shipped_rules() -> RuleSet:
    return load_rules(bundled_rules_dir())


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)


@pytest.fixture(scope="session")
def client(settings: Settings, shipped_rules: RuleSet) -> TestClient:
    return TestClient(create_app(settings, shipped_rules), follow_redirects=False)


@pytest.fixture()
def rules_dir(tmp_path: Path) -> Path:
    """An empty directory for a test's own rule files."""
    directory = tmp_path / "rules"
    directory.mkdir()
    return directory


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = os.environ.get("ROUTER_TEST_CHROMIUM") or debian_tool("chromium", "chromium-browser",
                                                                       package="chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()
