"""The headers every answer of the router carries, whoever gives it.

Decided clicks (redirects, landing and block pages), 404 and 405 pages, the edge's refusals (400, 431),
click limits' 429, /healthz, /readyz and /metrics, the beacons' 204, and the protocol's own refusals
(400, 408, 431: router.serve.protocol) all start their headers from SECURITY_HEADERS: a header every
answer should carry is added here, once. tests/test_request_limits.py sends one of each kind of answer
and checks every header listed here on it.
"""

from __future__ import annotations

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # A body is what its Content-Type says: a browser never sniffs a page out of a plain-text refusal.
    (b"x-content-type-options", b"nosniff"),
    # The click's own URL (its link, its ids) goes nowhere with the visitor's next request.
    (b"referrer-policy", b"no-referrer"),
    # Every answer is made for one click (its request id, nonce, token, visitor cookie): no cache keeps one.
    (b"cache-control", b"no-store"),
)
