"""Remote rules: a bundle fetched over HTTPS with ETag; a failed fetch or a bad bundle keeps the last good.

Fault shapes run against a fake upstream (one handler behind httpx.MockTransport, cases in one table);
the router's real behaviour runs against a tiny real HTTP server on 127.0.0.1. Nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from router.decision.rules import RuleSetError
from router.decision.yaml_reader import MAX_FILE_BYTES
from router.serve.config import Settings, check_rules_url
from router.serve.reload import ActiveRules, Reloader
from router.serve.remote import FetchError, RemoteBundle, display_url
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.servers import Server, free_port

URL = "https://rules.example.test/fleet/rules.yaml"  # never contacted: every fetch here goes to a fake
ITEM = "https://item.taobao.com/item.htm?id=123456"
CLICK = f"/go?url={quote(ITEM, safe='')}"
DESKTOP = {"user-agent": uas.CHROME_WINDOWS}
WEB = b"rules: []\ndefault: web\n"
LANDING = b"rules: []\ndefault: landing\n"
BROKEN = b"rules:\n  - id: x\n    when: {chanel: ad}\n    then: app\ndefault: web\n"


def bundle(handler: Callable[[httpx.Request], Any], timeout: float = 1.0) -> RemoteBundle:
    return RemoteBundle(URL, timeout=timeout, transport=httpx.MockTransport(handler))


def fetch(remote: RemoteBundle) -> Any:
    return asyncio.run(remote.poll())


# --- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://rules.example.com/r.yaml", "http://127.0.0.1:8080/r.yaml",
                                 "http://127.9.9.9/r.yaml", "http://[::1]:9/r.yaml", "http://localhost/r.yaml"])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    """https anywhere; plain http only to this machine (tests, local development)."""
    assert check_rules_url(url) == url


def test_plain_http_elsewhere_is_refused() -> None:
    """Plain http to another host is refused with a sentence that says what is accepted."""
    with pytest.raises(ValueError) as refused:
        check_rules_url("http://rules.example.com/r.yaml")
    assert str(refused.value) == (
        "rules URL 'http://rules.example.com/r.yaml' uses plain http, which anyone on the way could alter; "
        "use https:// (plain http:// is accepted only for loopback hosts, 127.0.0.1, ::1 or localhost, "
        "for local development)"
    )


def test_url_settings_from_the_environment() -> None:
    """ROUTER_RULES_DIR may be a URL; it is then polled every 30 s unless told otherwise."""
    settings = Settings.from_env({"ROUTER_RULES_DIR": URL})
    assert settings.rules_url == URL and settings.rules_location == URL and settings.rules_poll_interval == 30
    assert Settings.from_env({"ROUTER_RULES_DIR": URL, "ROUTER_RULES_POLL_SECONDS": "0.2"}).rules_poll_interval == 0.2
    assert Settings.from_env({}).rules_poll_interval == 0.5 and Settings.from_env({}).rules_url == ""


@pytest.mark.parametrize(("env", "message"), [
    ({"ROUTER_RULES_POLL_SECONDS": "soon"}, "ROUTER_RULES_POLL_SECONDS must be a number of seconds, got 'soon'"),
    ({"ROUTER_RULES_POLL_SECONDS": "0.01"}, "ROUTER_RULES_POLL_SECONDS must be 0 (reload on SIGHUP only) or at "
                                            "least 0.1, got 0.01"),
    ({"ROUTER_RULES_TIMEOUT_SECONDS": "120"}, "ROUTER_RULES_TIMEOUT_SECONDS must be between 0.1 and 60 seconds, "
                                              "got 120"),
    ({"ROUTER_RULES_DIR": "https:///r.yaml"}, "rules URL 'https:///r.yaml' has no host; expected e.g. "
                                              "https://rules.example.com/rules.yaml"),
])
def test_bad_reload_settings_are_refused(env: dict[str, str], message: str) -> None:
    """Each reload setting that cannot work is one sentence."""
    with pytest.raises(ValueError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == message


def test_display_url_hides_secrets() -> None:
    """A password or query string in the URL never reaches logs or /readyz."""
    assert display_url("https://ops:s3cret@rules.example.com/r.yaml?token=abc") == "https://rules.example.com/r.yaml?…"


# --- fault shapes, against a fake upstream ----------------------------------------------------------


async def _slowly(chunks: int, pause: float) -> AsyncIterator[bytes]:
    for _ in range(chunks):
        await asyncio.sleep(pause)
        yield b"# still coming\n"


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield b"#" * 65_536


async def _hang(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(30)
    return httpx.Response(200, content=WEB)


def _raise(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


TLS_FAILURE = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1000)"

# (name, handler, the FetchError's message)
FAULTS: list[tuple[str, Callable[[httpx.Request], Any], str]] = [
    ("server error", lambda r: httpx.Response(500), f"{URL}: answered 500 Internal Server Error; expected 200"),
    ("not found", lambda r: httpx.Response(404), f"{URL}: answered 404 Not Found; expected 200"),
    ("redirect", lambda r: httpx.Response(302, headers={"location": "http://elsewhere.test/r.yaml"}),
     f"{URL}: answered 302 Found (a redirect to http://elsewhere.test/r.yaml: not followed); expected 200"),
    ("declared too big", lambda r: httpx.Response(200, headers={"content-length": str(MAX_FILE_BYTES + 1)},
                                                  content=b""),
     f"{URL}: the bundle is {MAX_FILE_BYTES + 1} bytes; the limit is {MAX_FILE_BYTES}"),
    ("streamed too big", lambda r: httpx.Response(200, content=_endless()),
     f"{URL}: the bundle is larger than the limit of {MAX_FILE_BYTES} bytes"),
    ("read timeout", _raise(httpx.ReadTimeout("timed out")), f"{URL}: no complete answer within 1 s"),
    ("no answer before the deadline", _hang, f"{URL}: no complete answer within 1 s"),
    ("body trickling past the deadline", lambda r: httpx.Response(200, content=_slowly(100, 0.05)),
     f"{URL}: no complete answer within 1 s"),
    ("refused", _raise(httpx.ConnectError("[Errno 111] Connection refused")),
     f"{URL}: fetch failed: [Errno 111] Connection refused"),
    ("bad certificate", _raise(httpx.ConnectError(TLS_FAILURE)),
     f"{URL}: fetch failed: TLS: {TLS_FAILURE} (the certificate must be valid for the host; "
     "verification is never turned off)"),
]


@pytest.mark.parametrize(("handler", "message"), [case[1:] for case in FAULTS], ids=[case[0] for case in FAULTS])
def test_fetch_faults(handler: Callable[[httpx.Request], Any], message: str) -> None:
    """Every way a fetch can fail is one FetchError sentence that starts with the URL."""
    started = time.monotonic()
    with pytest.raises(FetchError) as failed:
        fetch(bundle(handler))
    assert str(failed.value) == message
    assert time.monotonic() - started < 10  # the deadline holds (loosely: a bound, not a benchmark)


def test_bundle_with_etag_then_304() -> None:
    """The ETag of a bundle is sent back; 304 means nothing to do."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("if-none-match"))
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, headers={"etag": '"v1"'}, content=WEB)

    remote = bundle(handler)
    rules = remote.load()
    assert rules.default.action.value == "web" and rules.files == (URL,) and remote.etag == '"v1"'
    assert fetch(remote) is None
    assert seen == [None, '"v1"']


def test_invalid_bundle_names_the_url_and_is_not_refetched() -> None:
    """Problems in a bundle carry the URL as their file; its ETag is kept so it is not fetched again."""
    remote = bundle(lambda r: httpx.Response(200, headers={"etag": '"bad"'}, content=BROKEN))
    with pytest.raises(RuleSetError) as rejected:
        fetch(remote)
    assert [str(p) for p in rejected.value.problems] == [
        f"{URL}:3:12: unknown condition 'chanel'; did you mean 'channel'?"]
    assert remote.etag == '"bad"'


def test_not_utf8_bundle_is_a_problem() -> None:
    """A bundle that is not UTF-8 text is rejected like such a file."""
    with pytest.raises(RuleSetError) as rejected:
        fetch(bundle(lambda r: httpx.Response(200, content=b"\xff\xfe rules")))
    assert str(rejected.value.problems[0]).startswith(f"{URL}:1:1: not UTF-8 text")


def test_failed_fetch_keeps_the_etag() -> None:
    """A failed fetch changes nothing: the next request still says which bundle it has."""
    answers = iter([httpx.Response(200, headers={"etag": '"v1"'}, content=WEB), httpx.Response(503)])
    remote = bundle(lambda r: next(answers))
    remote.load()
    with pytest.raises(FetchError):
        fetch(remote)
    assert remote.etag == '"v1"'


def test_304_to_a_first_fetch_is_an_error() -> None:
    """Startup needs a whole bundle: a server answering 304 to a plain GET is a clear error."""
    with pytest.raises(FetchError) as failed:
        bundle(lambda r: httpx.Response(304)).load()
    assert str(failed.value) == f"{URL}: answered 304 Not Modified; expected 200"


def test_reloader_follows_a_bundle_and_keeps_last_good() -> None:
    """Through the Reloader: a new bundle swaps in, a failed fetch is a rejected attempt, 304 is nothing."""
    answers = iter([
        httpx.Response(200, headers={"etag": '"1"'}, content=WEB),
        httpx.Response(200, headers={"etag": '"2"'}, content=LANDING),
        httpx.Response(500),
        httpx.Response(304),
    ])
    remote = bundle(lambda r: next(answers))
    active = ActiveRules(remote.load(), URL)
    reloader = Reloader(active, remote, interval=30)
    landing = asyncio.run(reloader.reload("watch", force=False))
    assert landing is not None and landing.ok and active.current.default.action.value == "landing"
    failed = asyncio.run(reloader.reload("watch", force=False))
    assert failed is not None and not failed.ok and failed.errors == (f"{URL}: answered 500 Internal Server Error; "
                                                                      "expected 200",)
    assert active.current.version == landing.version
    assert asyncio.run(reloader.reload("watch", force=False)) is None and active.last_attempt is failed


def test_app_serves_a_bundle_and_readyz_names_it() -> None:
    """create_app with a bundle: its rules serve, and /readyz says where they came from."""
    settings = Settings(rules_dir=Path("unused"), signing_keys=TEST_KEYS, rules_url=URL)
    remote = bundle(lambda r: httpx.Response(200, headers={"etag": '"1"'}, content=LANDING))
    http = TestClient(create_app(settings, source=remote), follow_redirects=False, client=("127.0.0.1", 50000))
    assert http.get(CLICK, headers=DESKTOP).status_code == 200
    ready = http.get("/readyz").json()
    assert ready["rules_source"] == URL and ready["rules"] == 0 and ready["last_reload"] is None


# --- a real upstream on 127.0.0.1 -------------------------------------------------------------------


@dataclass
class Upstream:
    """A tiny real HTTP server serving one bundle with an ETag; `mode` says how it answers next."""

    body: bytes = WEB
    mode: str = "bundle"  # bundle, error (500), hang (accept, never answer)
    requests: list[str | None] = field(default_factory=list)  # If-None-Match of each request
    release: threading.Event = field(default_factory=threading.Event)
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.requests.append(self.headers.get("if-none-match"))
                if upstream.mode == "hang":
                    upstream.release.wait(20)
                    return
                if upstream.mode == "error":
                    self.send_error(500)
                    return
                etag = f'"{hashlib.sha256(upstream.body).hexdigest()[:16]}"'
                if self.headers.get("if-none-match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/yaml")
                self.send_header("Content-Length", str(len(upstream.body)))
                self.end_headers()
                self.wfile.write(upstream.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/rules.yaml"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def upstream() -> Iterator[Upstream]:
    running = Upstream()
    yield running
    running.close()


def _wait(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_router_follows_a_real_upstream(upstream: Upstream) -> None:
    """The real server polls a bundle: 304 while unchanged, a new bundle serves, and a broken bundle,
    500s and a hang each keep the last good rules, visible in /readyz and the log."""
    server = Server("--rules", upstream.url, env={"ROUTER_RULES_POLL_SECONDS": "0.2",
                                                  "ROUTER_RULES_TIMEOUT_SECONDS": "0.5"}).wait_ready()
    try:
        base = server.base

        def served() -> int:
            return httpx.get(base + CLICK, headers=DESKTOP).status_code

        def last() -> dict[str, Any]:
            return dict(httpx.get(base + "/readyz").json()["last_reload"] or {})

        assert served() == 302
        _wait(lambda: sum(1 for etag in upstream.requests if etag) >= 3, "polls with If-None-Match")
        assert last() == {}  # 304: nothing to do, nothing to report

        upstream.body = LANDING
        _wait(lambda: served() == 200, "the changed bundle")
        good = httpx.get(base + "/readyz").json()
        assert good["rules_source"] == upstream.url and last()["result"] == "ok"

        upstream.body = BROKEN
        _wait(lambda: last().get("result") == "rejected", "the broken bundle")
        assert last()["errors"] == [f"{upstream.url}:3:12: unknown condition 'chanel'; did you mean 'channel'?"]

        upstream.mode = "error"
        _wait(lambda: "answered 500" in "".join(last().get("errors", [])), "the 500s")
        assert last()["result"] == "unavailable"  # not the rules' fault: no file:line to fix
        assert served() == 200

        upstream.mode = "hang"
        _wait(lambda: "no complete answer within 0.5 s" in "".join(last().get("errors", [])), "the hang")
        assert served() == 200 and httpx.get(base + "/readyz").json()["rules_version"] == good["rules_version"]

        upstream.release.set()
        upstream.mode, upstream.body = "bundle", WEB
        _wait(lambda: served() == 302, "the good bundle again")
    finally:
        output = server.stop()
    assert f"rules rejected: {upstream.url}:3:12: unknown condition 'chanel'" in output
    assert f"rules rejected: {upstream.url}: answered 500" in output


def test_two_workers_follow_a_bundle(upstream: Upstream) -> None:
    """Each worker process fetches the bundle at startup (inside uvicorn's loop) and polls it."""
    server = Server("--rules", upstream.url, "--workers", "2", env={"ROUTER_RULES_POLL_SECONDS": "0.2"}).wait_ready()
    try:
        assert httpx.get(server.base + CLICK, headers=DESKTOP).status_code == 302
        upstream.body = LANDING
        _wait(lambda: all(httpx.get(server.base + CLICK, headers=DESKTOP).status_code == 200 for _ in range(10)),
              "both workers")
    finally:
        server.stop()


def test_first_fetch_must_succeed() -> None:
    """No bundle at startup, no server: one sentence naming the URL, exit 2."""
    url = f"http://127.0.0.1:{free_port()}/rules.yaml"  # nothing listens there
    running = Server("--rules", url)
    assert running.wait_exit() == 2
    output = running.stop()
    last = json.loads(output.splitlines()[-1])  # refusals to start are JSON lines like the rest
    message = last["message"]
    assert message.startswith(f"error: {url}: fetch failed: ") and message.endswith("; nothing was loaded")


def test_broken_first_bundle_refuses_to_start(upstream: Upstream) -> None:
    """A bundle that does not validate at startup: its problems with the URL as the file, exit 2."""
    upstream.body = BROKEN
    running = Server(env={"ROUTER_RULES_DIR": upstream.url})
    assert running.wait_exit() == 2
    output = running.stop()
    assert f"{upstream.url}:3:12: unknown condition 'chanel'; did you mean 'channel'?" in output
    assert "error: rules rejected: 1 problem; nothing was loaded" in output


def test_plain_http_to_another_host_refuses_to_start() -> None:
    """Refused before any fetch is tried, so this never touches the network."""
    running = Server("--rules", "http://rules.example.com/rules.yaml")
    assert running.wait_exit() == 2
    assert "plain http:// is accepted only for loopback hosts" in running.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_is_verified(tmp_path: Path) -> None:
    """A real HTTPS server on 127.0.0.1 with a self-signed certificate is refused: verification is on."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    upstream = Upstream(tls=context)
    try:
        with pytest.raises(FetchError) as failed:
            RemoteBundle(upstream.url, timeout=5).load()
        assert "TLS: " in str(failed.value) and "CERTIFICATE_VERIFY_FAILED" in str(failed.value)
    finally:
        upstream.close()
