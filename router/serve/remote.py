"""Rules from a URL: one rules bundle fetched over HTTPS, polled with ETag, through router.serve.upstream.

A bundle is one rule file in the usual format (`rules:`, `default:`, `settings:`), validated by the same
loader as a directory, with the URL as its file name in every problem. Fetching obeys a few limits, each
of which turns into a FetchError sentence rather than a hung or swollen process:

- a deadline for the whole exchange (connect, answer and body), `ROUTER_RULES_TIMEOUT_SECONDS`;
- at most `MAX_FILE_BYTES` of body, the same limit as a rule file on disk;
- TLS certificates verified (httpx's default, never turned off); redirects are not followed, so a
  bundle cannot be moved to plain http or another host behind the operator's back;
- `If-None-Match` with the last ETag seen: 304 means the bundle has not changed and nothing is done.

Errors, drawn once:

    RulesUnavailable (router.serve.sources)
     └─ FetchError   the bundle could not be fetched (timeout, refused, bad TLS, non-200, too big)
    RuleSetError (router.decision.rules)  it was fetched and does not validate
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

from router.decision.rules import RuleSet, RuleSource, build_rule_set
from router.decision.yaml_reader import MAX_FILE_BYTES
from router.serve.config import check_rules_url
from router.serve.sources import RulesUnavailable
from router.serve.upstream import BodyTooLarge, Transport, UpstreamError, UpstreamTimeout, fetch


class FetchError(RulesUnavailable):
    """The bundle could not be fetched; the message is one sentence that starts with the URL."""


def display_url(url: str) -> str:
    """The URL as logs and /readyz show it: without a password or query string, which may hold secrets."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "…" if parts.query else "", ""))


class RemoteBundle:
    """One bundle URL and the ETag of the last body received from it."""

    def __init__(self, url: str, timeout: float = 5.0, transport: Transport | None = None) -> None:
        self.url = check_rules_url(url)
        self.name = display_url(url)
        self.timeout = timeout
        self.etag: str | None = None
        self._transport = transport  # tests put a fake upstream here

    def __str__(self) -> str:
        return self.name

    def load(self) -> RuleSet:
        """Fetch and validate the whole bundle, at startup (blocking). Raises FetchError or RuleSetError."""
        self.etag = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            rules = asyncio.run(self.poll())
        else:  # called from inside a running loop (uvicorn's app factory): run a loop of our own beside it
            with ThreadPoolExecutor(1) as pool:
                rules = pool.submit(asyncio.run, self.poll()).result()
        if rules is None:  # cannot happen: without an ETag to send, 304 is an error like any non-200
            raise FetchError(f"{self.name}: answered 304 Not Modified to a request for the whole bundle")
        return rules

    async def poll(self, force: bool = False) -> RuleSet | None:
        """The bundle's rules, or None when it has not changed since the last fetch (304).

        `force` (SIGHUP) changes nothing: a server that still has the same ETag has the same bundle.
        """
        data = await self._get()
        if data is None:
            return None
        return await asyncio.to_thread(build_rule_set, [RuleSource(self.name, data)], self.name)

    async def _get(self) -> bytes | None:
        headers = {"Accept": "application/yaml, text/yaml, text/plain;q=0.9, */*;q=0.1"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        try:
            answer = await fetch(self.url, headers=headers, timeout=self.timeout, max_bytes=MAX_FILE_BYTES,
                                 transport=self._transport)
        except UpstreamTimeout:
            raise FetchError(f"{self.name}: no complete answer within {self.timeout:g} s") from None
        except BodyTooLarge as err:
            size = f"{err.declared} bytes; the limit is {MAX_FILE_BYTES}" if err.declared else (
                f"larger than the limit of {MAX_FILE_BYTES} bytes")
            raise FetchError(f"{self.name}: the bundle is {size}") from None
        except UpstreamError as err:
            raise FetchError(f"{self.name}: fetch failed: {_describe(str(err))}") from None
        if answer.status == 304 and self.etag:
            return None
        if answer.status != 200:
            reason = f" {answer.reason}" if answer.reason else ""
            location = answer.headers.get("location")
            where = f" (a redirect to {location}: not followed)" if location else ""
            raise FetchError(f"{self.name}: answered {answer.status}{reason}{where}; expected 200")
        # Also for a bundle that fails validation: it is not fetched again until it changes.
        self.etag = answer.headers.get("etag")
        return answer.body


def _describe(text: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return f"TLS: {text} (the certificate must be valid for the host; verification is never turned off)"
    return text
