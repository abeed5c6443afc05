"""Screenshots of the documentation site as a reader sees it, shown on its home page (docs/index.md).

    .venv/bin/python -m tests.site_screenshots [--out docs/screenshots]

Builds the site (`mkdocs build --strict`, mkdocs.yml) into a temporary folder, serves it on a free loopback
port (http.server in a thread of this process), opens it in headless Chromium (Debian's `chromium`, or
ROUTER_TEST_CHROMIUM, driven by Playwright and launched as tests/conftest.py launches it) and saves the
first 1280×800 of two pages: the home page as site-home.png and the rules guide (writing-rules/) as
site-rules.png. Requests that would leave the machine (the theme's web fonts) are refused, so a
screenshot shows the system's fonts and doesn't depend on the network; Chinese text needs a CJK font
(Debian's fonts-wqy-microhei). A tool, not a test: run it when the site's look changes.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
# The screenshot's file name, and the page's path under the site's root.
PAGES = {"site-home.png": "", "site-rules.png": "writing-rules/"}
VIEWPORT = {"width": 1280, "height": 800}
# The flags the test suite's browser fixture passes (tests/conftest.py's CHROMIUM_FLAGS; not imported, as
# importing conftest sets up the test run's data directory).
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
]


def build_site(target: Path) -> None:
    """The site built strictly into `target`, as .ci/run builds it."""
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(target)],
                   cwd=ROOT, env=env, check=True)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(site: Path) -> Iterator[str]:
    """The base URL of `site` served on a free loopback port, for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def chromium() -> str:
    found = os.environ.get("ROUTER_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    return found


def screenshots(base: str, out: Path) -> list[Path]:
    """Each of PAGES opened from `base` and its first viewport saved in `out`."""
    from playwright.sync_api import Route, sync_playwright

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="en-US",
                                          color_scheme="light")
            context.route("**/*", loopback_only)
            page = context.new_page()
            for name, path in PAGES.items():
                response = page.goto(base + path, wait_until="load")
                if response is None or response.status != 200:
                    raise SystemExit(f"{base + path} answered {response and response.status}")
                # Not a blank or an error page: the theme's navigation and the page's heading are drawn.
                page.locator("nav.md-nav--primary").first.wait_for(state="attached")
                page.locator("article h1").first.wait_for(state="visible")
                page.evaluate("document.fonts.ready.then(() => true)")
                target = out / name
                page.screenshot(path=str(target))
                saved.append(target)
        finally:
            browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the PNGs (default {OUT})")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adlink-site-") as folder:
        site = Path(folder) / "site"
        build_site(site)
        with serving(site) as base:
            for path in screenshots(base, args.out):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
