"""Signing keys can't be forgotten by accident (issue 25, 4): the public development key serves only a
router nobody else reaches (loopback), or one told `--development-key`; `sign` signs with it only when told
so, and always says which key id it signed with. Real `serve` processes on free ports."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from router.cli import main
from router.decision.signing import SigningKeyError, SigningKeys, verify
from router.serve.config import Settings, check_serving_keys, check_signing_keys
from tests.conftest import TEST_KEYS
from tests.servers import Server, free_port

KEYS_TEXT = "k2:second-secret-0123456789,k1:first-secret-0123456789"  # TEST_KEYS
ITEM = "https://item.taobao.com/item.htm?id=123456"
NO_KEYS = {"ROUTER_SIGNING_KEYS": "", "ROUTER_SIGNING_KEYS_FILE": ""}
REFUSAL = ("no signing keys, and serve listens on 0.0.0.0, which other machines reach: set "
           "ROUTER_SIGNING_KEYS=kid:secret[,kid:secret…] (key ids letters and digits, secrets of 16 characters or "
           "more, the first signs) or ROUTER_SIGNING_KEYS_FILE; or, for a demo only, add --development-key to serve "
           "with the public development key (anyone can sign ad links with it)")


def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`serve` expected to refuse: it exits by itself."""
    return subprocess.run([sys.executable, "-m", "router", "serve", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "ROUTER_DRAIN_SECONDS": "0", **env})


def only_line(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The one line a refused `serve` writes (a JSON line, like everything serve writes), and nothing else."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "" and "Traceback" not in result.stdout
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert record["level"] == "critical" and record["logger"] == "router.startup"
    return record


# --- serve ---------------------------------------------------------------------------------------------


def test_serve_on_every_address_without_keys_is_refused_with_one_line() -> None:
    record = only_line(serve("--host", "0.0.0.0", "--port", str(free_port()), **NO_KEYS))
    assert record["message"] == f"error: {REFUSAL}"


def test_the_images_setting_of_the_host_is_refused_too() -> None:
    """The Docker image listens on 0.0.0.0 through ROUTER_HOST: without keys it does not start either; nor
    with --workers (the parent refuses before starting any)."""
    record = only_line(serve(ROUTER_HOST="0.0.0.0", ROUTER_PORT=str(free_port()), **NO_KEYS))
    assert record["message"] == f"error: {REFUSAL}"
    record = only_line(serve("--workers", "2", ROUTER_HOST="0.0.0.0", ROUTER_PORT=str(free_port()), **NO_KEYS))
    assert record["message"] == f"error: {REFUSAL}"


def test_serve_on_every_address_with_the_explicit_opt_in_starts() -> None:
    running = Server("--host", "0.0.0.0", "--development-key", env=NO_KEYS).wait_ready()
    try:
        answer = httpx.get(f"{running.base}/go?url={ITEM}")
        assert answer.status_code in (200, 302)
    finally:
        output = running.stop()
    assert output.count("PUBLIC DEVELOPMENT KEY") == 1  # still said loudly


def test_workers_on_every_address_with_the_explicit_opt_in_start() -> None:
    """The parent checks, once; its workers (started with --reuse-port) serve what it accepted."""
    running = Server("--host", "0.0.0.0", "--development-key", "--workers", "2", env=NO_KEYS).wait_ready()
    try:
        assert httpx.get(f"{running.base}/readyz").json()["status"] == "ready"
    finally:
        running.stop()


def test_serve_on_loopback_without_keys_starts_with_the_development_key() -> None:
    running = Server(env=NO_KEYS).wait_ready()  # tests.servers: --host 127.0.0.1
    try:
        assert httpx.get(f"{running.base}/readyz").status_code == 200
    finally:
        output = running.stop()
    assert output.count("PUBLIC DEVELOPMENT KEY") == 1


def test_serve_with_keys_on_every_address_needs_no_opt_in_and_refuses_it(tmp_path: Path) -> None:
    running = Server("--host", "0.0.0.0", env={"ROUTER_SIGNING_KEYS": KEYS_TEXT}).wait_ready()
    try:
        assert httpx.get(f"{running.base}/readyz").status_code == 200
    finally:
        output = running.stop()
    assert "PUBLIC DEVELOPMENT KEY" not in output
    record = only_line(serve("--host", "0.0.0.0", "--port", str(free_port()), "--development-key",
                             ROUTER_SIGNING_KEYS=KEYS_TEXT, ROUTER_SIGNING_KEYS_FILE=""))
    assert record["message"] == ("error: --development-key is given, but so are signing keys (ROUTER_SIGNING_KEYS "
                                 "or ROUTER_SIGNING_KEYS_FILE); drop one of them")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LocalHost",
                                  "::ffff:127.0.0.1"])
def test_loopback_in_every_spelling_takes_the_development_key(host: str) -> None:
    check_serving_keys(SigningKeys.development_keys(), host, development_key=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "192.168.0.5", "::ffff:10.0.0.1",
                                  "router.example.com", "localhost.example.com", "127.0.0.1.nip.io"])
def test_any_other_address_needs_keys_or_the_opt_in(host: str) -> None:
    with pytest.raises(SigningKeyError, match="no signing keys, and serve listens on"):
        check_serving_keys(SigningKeys.development_keys(), host, development_key=False)
    check_serving_keys(SigningKeys.development_keys(), host, development_key=True)
    check_serving_keys(TEST_KEYS, host, development_key=False)


def test_a_keys_file_is_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("k1:first-secret-0123456789\n")
    settings = Settings.from_env({"ROUTER_SIGNING_KEYS_FILE": str(path)})
    check_serving_keys(settings.signing_keys, "0.0.0.0", development_key=False)
    with pytest.raises(SigningKeyError, match="--development-key is given, but so are signing keys"):
        check_serving_keys(settings.signing_keys, "0.0.0.0", development_key=True)


# --- sign ----------------------------------------------------------------------------------------------


SIGN = ["sign", "--url", ITEM, "--source", "unidesk", "--advertiser", "a1"]


def test_sign_without_keys_is_refused_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for name in NO_KEYS:
        monkeypatch.delenv(name, raising=False)
    out = io.StringIO()
    assert main(SIGN, out) == 2
    assert out.getvalue() == ""  # no link
    assert capsys.readouterr().err == (
        "error: no signing keys: set ROUTER_SIGNING_KEYS=kid:secret[,kid:secret…] (key ids letters and digits, "
        "secrets of 16 characters or more, the first signs) or ROUTER_SIGNING_KEYS_FILE; or, for a demo only, add "
        "--development-key to sign with the public development key (anyone can sign such links)\n")


def test_sign_with_the_opt_in_signs_with_the_development_key(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    for name in NO_KEYS:
        monkeypatch.delenv(name, raising=False)
    out = io.StringIO()
    assert main([*SIGN, "--development-key"], out) == 0
    fields = dict(parse_qsl(urlsplit(out.getvalue().strip()).query))
    assert fields["kid"] == "dev" and verify(fields, SigningKeys.development_keys())[0] is True
    assert capsys.readouterr().err == (
        "signed with key id dev: the PUBLIC development key (a demo only; anyone can sign such links)\n")


def test_sign_with_keys_says_which_key_id_signed(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ROUTER_SIGNING_KEYS", KEYS_TEXT)
    monkeypatch.delenv("ROUTER_SIGNING_KEYS_FILE", raising=False)
    out = io.StringIO()
    assert main(SIGN, out) == 0
    fields = dict(parse_qsl(urlsplit(out.getvalue().strip()).query))
    assert fields["kid"] == "k2" and verify(fields, TEST_KEYS)[0] is True
    captured = capsys.readouterr()
    assert captured.err == "signed with key id k2\n"  # the key id, never its secret
    assert main([*SIGN, "--development-key"], io.StringIO()) == 2  # told both: neither is picked silently
    assert capsys.readouterr().err == ("error: --development-key is given, but so are signing keys "
                                       "(ROUTER_SIGNING_KEYS or ROUTER_SIGNING_KEYS_FILE); drop one of them\n")


def test_sign_as_a_command_line_program() -> None:
    """The same as an operator runs it: exit status 2 and one line on stderr; the link alone on stdout."""
    command = [sys.executable, "-m", "router", *SIGN]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env={**os.environ, **NO_KEYS})
    assert refused.returncode == 2 and refused.stdout == "" and len(refused.stderr.splitlines()) == 1
    signed = subprocess.run(command, capture_output=True, text=True, timeout=60,
                            env={**os.environ, **NO_KEYS, "ROUTER_SIGNING_KEYS": KEYS_TEXT})
    assert signed.returncode == 0 and signed.stdout.startswith("/ad?") and signed.stderr == "signed with key id k2\n"


def test_check_signing_keys() -> None:
    check_signing_keys(TEST_KEYS, development_key=False)
    check_signing_keys(SigningKeys.development_keys(), development_key=True)
    with pytest.raises(SigningKeyError, match=r"^no signing keys: set ROUTER_SIGNING_KEYS="):
        check_signing_keys(SigningKeys.development_keys(), development_key=False)
