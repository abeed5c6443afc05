"""The short links' JSON API (router.serve.links_api), mounted under /api as the router mounts it, on a real
SQLite file: statuses, JSON bodies and headers; tokens and scopes; the failed authentications' limit (on a
clock the test moves); all-or-nothing writes; the database failing; the OpenAPI document against the routes."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from router.decision.short_links import FIELD_NAMES, is_slug
from router.serve.link_admin import LinkAdmin
from router.serve.link_store import LinkStore, upgrade
from router.serve.links_api import AUTH_FAILURES, MAX_BODY_BYTES, FailedAuths, links_api
from router.serve.openapi import SLUG_PATTERN

ALLOWED = ("taobao.com", "tmall.com", "tb.cn", "tmall.hk")
PUBLIC = "https://go.example.com"
ITEM = "https://item.taobao.com/item.htm?id=123"
SHORT_URL = re.compile(r"https://go\.example\.com/s/[0-9A-Za-z]{7}")


class Clock:
    """time.monotonic as the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[LinkStore]:
    url = f"sqlite:///{tmp_path}/links.db"
    upgrade(url)
    links = LinkStore(url)
    yield links
    links.close()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def mounted(store: LinkStore, clock: Clock | None = None) -> Starlette:
    admin = LinkAdmin(store, allowed_hosts=ALLOWED, public_url=PUBLIC)
    api = links_api(admin, store, clock=clock or Clock())
    return Starlette(routes=[Mount("/api", app=api)])


@pytest.fixture()
def http(store: LinkStore, clock: Clock) -> TestClient:
    return TestClient(mounted(store, clock), follow_redirects=False)


def bearer(store: LinkStore, scope: str = "admin", advertiser: str | None = None) -> dict[str, str]:
    text, _ = store.create_token(scope, advertiser)
    return {"Authorization": f"Bearer {text}"}


def answered(response: httpx.Response, status: int) -> Any:
    """The JSON body, once the status and the headers every answer carries are checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    return response.json()


def count(store: LinkStore) -> int:
    total, cursor = 0, None
    while True:
        rows, cursor = store.list(cursor=cursor, limit=1000)
        total += len(rows)
        if cursor is None:
            return total


def item(number: int, **fields: Any) -> dict[str, Any]:
    return {"url": f"https://item.taobao.com/item.htm?id={number}", **fields}


# --- the endpoints --------------------------------------------------------------------------------------------


def test_create_answers_201_with_the_short_url_and_location(http: TestClient, store: LinkStore) -> None:
    token, record = store.create_token("admin")
    response = http.post("/api/links", json={"url": ITEM, "tags": ["Spring", "sale"], "title": "Shoes"},
                         headers={"Authorization": f"Bearer {token}"})
    link = answered(response, 201)
    assert SHORT_URL.fullmatch(link["short_url"])
    assert link["short_url"] == f"{PUBLIC}/s/{link['code']}"
    assert response.headers["location"] == f"/api/links/{link['code']}"
    assert (link["url"], link["tags"], link["title"], link["clicks"]) == (ITEM, ["spring", "sale"], "Shoes", 0)
    assert link["created_by"] == record["id"]
    assert token not in response.text
    assert answered(http.get(response.headers["location"], headers={"Authorization": f"bearer {token}"}), 200) == link


def test_the_scheme_is_read_in_any_case(http: TestClient, store: LinkStore) -> None:
    token, _ = store.create_token("links:read")
    for scheme in ("Bearer", "bearer", "BEARER"):
        answered(http.get("/api/links", headers={"Authorization": f"{scheme} {token}"}), 200)


def test_list_pages_through_250_links_each_once(http: TestClient, store: LinkStore) -> None:
    auth = bearer(store)
    answered(http.post("/api/links:batch", json={"links": [item(n) for n in range(250)]}, headers=auth), 201)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = answered(http.get("/api/links", params=params, headers=auth), 200)
        seen += [link["code"] for link in page["links"]]
        cursor, pages = page["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    assert seen == sorted(seen)
    assert len(answered(http.get("/api/links", headers=auth), 200)["links"]) == 100  # the default limit


def test_list_filters_by_tag_and_advertiser(http: TestClient, store: LinkStore) -> None:
    auth = bearer(store)
    links = [item(1, tags=["spring"], advertiser="nike"), item(2, tags=["spring"], advertiser="puma"),
             item(3, tags=["autumn"], advertiser="nike"), item(4)]
    made = answered(http.post("/api/links:batch", json={"links": links}, headers=auth), 201)["links"]
    codes = [link["code"] for link in made]

    def listed(**params: str) -> set[str]:
        return {link["code"] for link in answered(http.get("/api/links", params=params, headers=auth), 200)["links"]}

    assert listed(tag="spring") == {codes[0], codes[1]}
    assert listed(advertiser="nike") == {codes[0], codes[2]}
    assert listed(tag="spring", advertiser="nike") == {codes[0]}
    assert listed() == set(codes)


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1", "1.5", "١٠"])
def test_a_bad_limit_is_named(http: TestClient, store: LinkStore, limit: str) -> None:
    body = answered(http.get("/api/links", params={"limit": limit}, headers=bearer(store)), 400)
    assert set(body["fields"]) == {"limit"}


def test_an_unknown_query_parameter_is_named(http: TestClient, store: LinkStore) -> None:
    body = answered(http.get("/api/links", params={"tags": "spring", "limit": "5"}, headers=bearer(store)), 400)
    assert set(body["fields"]) == {"tags"}


def test_patch_changes_only_the_fields_given(http: TestClient, store: LinkStore) -> None:
    auth = bearer(store)
    link = answered(http.post("/api/links", json=item(1, title="Old", campaign="spring"), headers=auth), 201)
    changed = answered(http.patch(f"/api/links/{link['code']}", json={"title": "New", "campaign": None,
                                                                      "max_clicks": 5}, headers=auth), 200)
    assert (changed["title"], changed["campaign"], changed["max_clicks"]) == ("New", None, 5)
    assert changed["url"] == link["url"]
    assert answered(http.get(f"/api/links/{link['code']}", headers=auth), 200) == changed


def test_delete_then_404(http: TestClient, store: LinkStore) -> None:
    auth = bearer(store)
    code = answered(http.post("/api/links", json=item(1), headers=auth), 201)["code"]
    response = http.delete(f"/api/links/{code}", headers=auth)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert answered(http.get(f"/api/links/{code}", headers=auth), 404) == {"error": f"no link has the code {code!r}"}
    answered(http.delete(f"/api/links/{code}", headers=auth), 404)
    answered(http.patch(f"/api/links/{code}", json={"title": "x"}, headers=auth), 404)
    answered(http.get("/api/links/not~a~code", headers=auth), 404)


def test_batch_of_1000_in_one_call(http: TestClient, store: LinkStore) -> None:
    body = answered(http.post("/api/links:batch", json={"links": [item(n) for n in range(1000)]},
                              headers=bearer(store)), 201)
    assert len(body["links"]) == 1000
    assert all(SHORT_URL.fullmatch(link["short_url"]) for link in body["links"])
    assert count(store) == 1000


def test_batch_of_1001_is_refused(http: TestClient, store: LinkStore) -> None:
    body = answered(http.post("/api/links:batch", json={"links": [item(n) for n in range(1001)]},
                              headers=bearer(store)), 400)
    assert "links" in body["fields"]
    assert count(store) == 0


# --- bad input: a 4xx naming the field, and nothing written -----------------------------------------------------

BAD_BODIES = [
    pytest.param("/api/links", {"url": "https://evil.example/"}, 400, "url", id="off-allowlist"),
    pytest.param("/api/links", item(1, slug="api"), 400, "slug", id="reserved-slug"),
    pytest.param("/api/links", item(1, slug="taken"), 409, "slug", id="slug-taken"),
    pytest.param("/api/links", item(1, max_clicks=0), 400, "max_clicks", id="max-clicks-0"),
    pytest.param("/api/links", item(1, max_clicks=-5), 400, "max_clicks", id="max-clicks-negative"),
    pytest.param("/api/links", item(1, expires_at="2001-01-01T00:00:00+00:00"), 400, "expires_at", id="expired"),
    pytest.param("/api/links", item(1, expires_at="next tuesday"), 400, "expires_at", id="unparseable-time"),
    pytest.param("/api/links", item(1, colour="red"), 400, "colour", id="unknown-field"),
    pytest.param("/api/links:batch", {"links": [item(0), item(1), item(2), {"url": "https://evil.example/"},
                                                item(4)]}, 400, "links[3].url", id="batch-one-bad"),
    pytest.param("/api/links:batch", {"links": [item(0), item(1, slug="taken")]}, 409, "links[1].slug",
                 id="batch-slug-taken"),
    pytest.param("/api/links:batch", {"links": []}, 400, "links", id="batch-empty"),
    pytest.param("/api/links:batch", {"links": [item(0)], "extra": 1}, 400, "extra", id="batch-extra"),
]


@pytest.mark.parametrize(("path", "body", "status", "field"), BAD_BODIES)
def test_bad_input_is_named_and_nothing_written(http: TestClient, store: LinkStore, path: str, body: object,
                                                status: int, field: str) -> None:
    auth = bearer(store)
    answered(http.post("/api/links", json=item(9, slug="taken"), headers=auth), 201)
    answer = answered(http.post(path, json=body, headers=auth), status)
    assert field in answer["fields"], answer
    assert answer["error"]
    assert count(store) == 1


def test_a_patch_with_a_bad_field_changes_nothing(http: TestClient, store: LinkStore) -> None:
    auth = bearer(store)
    link = answered(http.post("/api/links", json=item(1, title="Kept"), headers=auth), 201)
    answer = answered(http.patch(f"/api/links/{link['code']}", json={"title": "Lost", "url": "https://evil.example/"},
                                 headers=auth), 400)
    assert set(answer["fields"]) == {"url"}
    assert answered(http.get(f"/api/links/{link['code']}", headers=auth), 200)["title"] == "Kept"


def test_a_body_over_1_mb_is_413(http: TestClient, store: LinkStore) -> None:
    body = b'{"url": "' + b"a" * MAX_BODY_BYTES + b'"}'
    response = http.post("/api/links", content=body, headers={**bearer(store), "Content-Type": "application/json"})
    answer = answered(response, 413)
    assert "1048576" in answer["error"]
    assert "body" in answer["fields"]
    assert count(store) == 0


def test_a_streamed_body_is_cut_off_at_the_limit(store: LinkStore) -> None:
    """No Content-Length: the API reads chunk by chunk and answers 413 once past 1 MB, not reading the rest."""
    app = mounted(store)
    token, _ = store.create_token("admin")
    chunk = b" " * 65_536
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": chunk, "more_body": received < 10_000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/links", "raw_path": b"/api/links", "root_path": "", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json"),
                         (b"transfer-encoding", b"chunked")],
             "client": ("192.0.2.1", 1234), "server": ("testserver", 80)}
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert received == MAX_BODY_BYTES // len(chunk) + 1  # stopped at the first chunk past the limit
    assert count(store) == 0


@pytest.mark.parametrize(("body", "said"), [
    (b'{"url": ', "the body is not JSON: Expecting value at line 1, column 9 (character 8)"),
    (b"", "the body is not JSON: Expecting value at line 1, column 1 (character 0)"),
    (b'{"url": NaN}', "NaN is not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"max_clicks": ' + b"9" * 5000 + b"}", "too many digits"),
    (b'["https://item.taobao.com/item.htm?id=1"]', "expected a JSON object"),
    (b"null", "expected a JSON object"),
])
def test_a_body_that_is_not_a_json_object_is_400(http: TestClient, store: LinkStore, body: bytes, said: str) -> None:
    for path in ("/api/links", "/api/links:batch"):
        response = http.post(path, content=body, headers={**bearer(store), "Content-Type": "application/json"})
        answer = answered(response, 400)
        assert said in answer["error"]
        assert set(answer["fields"]) == {"body"}
    assert count(store) == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx", "multipart/form-data; boundary=x"])
def test_another_content_type_is_415(http: TestClient, store: LinkStore, content_type: str | None) -> None:
    headers = {**bearer(store), **({"Content-Type": content_type} if content_type else {})}
    answered(http.post("/api/links", content=b'{"url": "%s"}' % ITEM.encode(), headers=headers), 415)
    assert count(store) == 0


def test_json_with_parameters_is_taken(http: TestClient, store: LinkStore) -> None:
    headers = {**bearer(store), "Content-Type": "Application/JSON; charset=utf-8"}
    answered(http.post("/api/links", content=b'{"url": "%s"}' % ITEM.encode(), headers=headers), 201)


def test_unknown_paths_and_methods_answer_json(http: TestClient, store: LinkStore) -> None:
    auth = bearer(store)
    for path in ("/api/nothing", "/api/links/", "/api/links:batch/x", "/api/links/abc/def"):
        assert "error" in answered(http.get(path, headers=auth), 404)
    response = http.put("/api/links", json={}, headers=auth)
    answered(response, 405)
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    response = http.get("/api/links:batch", headers=auth)
    answered(response, 405)
    assert response.headers["allow"] == "POST"
    assert count(store) == 0


# --- tokens and scopes --------------------------------------------------------------------------------------------


def test_401_without_a_token_or_with_one_not_valid(http: TestClient, store: LinkStore) -> None:
    missing = http.get("/api/links")
    assert "missing" in answered(missing, 401)["error"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    answered(http.get("/api/links", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)

    expired, _ = store.create_token("admin", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    revoked, record = store.create_token("admin")
    store.revoke_token(record["id"])
    valid, _ = store.create_token("admin")
    wrong = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    bodies = set()
    for token in (wrong, expired, revoked, "alr_0000_x", "not-a-token", "x" * 5000):
        response = http.get("/api/links", headers={"Authorization": f"Bearer {token}"})
        bodies.add(response.text)
        answered(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert token not in response.text
    assert len(bodies) == 1  # wrong, expired and revoked: the same answer


def test_403_for_a_scope_that_does_not_cover_it(http: TestClient, store: LinkStore) -> None:
    admin = bearer(store)
    theirs = answered(http.post("/api/links", json=item(1, advertiser="puma"), headers=admin), 201)["code"]
    reader, writer_a = bearer(store, "links:read"), bearer(store, "links:write", "nike")
    reader_a = bearer(store, "links:read", "nike")

    refusals = [
        http.post("/api/links", json=item(2), headers=reader),
        http.post("/api/links:batch", json={"links": [item(2)]}, headers=reader),
        http.patch(f"/api/links/{theirs}", json={"title": "x"}, headers=reader),
        http.delete(f"/api/links/{theirs}", headers=reader),
        http.post("/api/links", json=item(2, advertiser="puma"), headers=writer_a),
        http.post("/api/links:batch", json={"links": [item(2), item(3, advertiser="puma")]}, headers=writer_a),
        http.get(f"/api/links/{theirs}", headers=writer_a),
        http.patch(f"/api/links/{theirs}", json={"title": "x"}, headers=writer_a),
        http.delete(f"/api/links/{theirs}", headers=writer_a),
        http.get("/api/links", params={"advertiser": "puma"}, headers=writer_a),
        http.get(f"/api/links/{theirs}", headers=reader_a),
        http.get("/api/links", params={"advertiser": "puma"}, headers=reader_a),
    ]
    for response in refusals:
        assert answered(response, 403)["error"]
    assert count(store) == 1
    assert answered(http.get(f"/api/links/{theirs}", headers=admin), 200)["title"] is None
    assert answered(http.get(f"/api/links/{theirs}", headers=reader), 200)["advertiser"] == "puma"


def test_a_write_token_fills_in_its_own_advertiser(http: TestClient, store: LinkStore) -> None:
    writer = bearer(store, "links:write", "nike")
    link = answered(http.post("/api/links", json=item(1), headers=writer), 201)
    assert link["advertiser"] == "nike"
    answered(http.post("/api/links", json=item(2, advertiser="puma"), headers=bearer(store)), 201)
    listed = answered(http.get("/api/links", headers=writer), 200)["links"]  # its advertiser's only
    assert [found["code"] for found in listed] == [link["code"]]
    assert answered(http.patch(f"/api/links/{link['code']}", json={"title": "t"}, headers=writer), 200)["title"] == "t"


def test_repeated_failures_from_one_address_are_429(store: LinkStore, clock: Clock) -> None:
    app = mounted(store, clock)
    guesser = TestClient(app, client=("2001:db8:1:2::7", 5000))
    neighbour = TestClient(app, client=("2001:db8:1:2::8", 5000))  # the same /64: the same client
    elsewhere = TestClient(app, client=("192.0.2.9", 5000))
    valid = bearer(store, "links:read")
    for _ in range(AUTH_FAILURES):
        answered(guesser.get("/api/links", headers={"Authorization": "Bearer alr_0000_guess"}), 401)
    refused = guesser.get("/api/links", headers={"Authorization": "Bearer alr_0000_guess"})
    assert "too many" in answered(refused, 429)["error"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    answered(guesser.get("/api/links", headers=valid), 429)  # even a valid token: the guesser learns nothing
    answered(neighbour.get("/api/links", headers=valid), 429)
    answered(elsewhere.get("/api/links", headers=valid), 200)
    clock.now += 61
    answered(guesser.get("/api/links", headers=valid), 200)


def test_the_failures_table_stays_bounded() -> None:
    clock = Clock()
    failures = FailedAuths(limit=2, window=60, clock=clock, kept=100)
    for number in range(10_000):
        failures.failed(f"198.51.{number // 256}.{number % 256}")
        assert len(failures._seen) <= 100
    failures.failed("203.0.113.1")
    failures.failed("203.0.113.1")
    assert failures.wait("203.0.113.1") == 60  # the newest is kept
    clock.now += 60
    assert failures.wait("203.0.113.1") is None


# --- the database failing -------------------------------------------------------------------------------------------


def test_an_unreachable_database_is_503_without_its_password() -> None:
    store = LinkStore("postgresql://u:secret@127.0.0.1:1/db")
    try:
        http = TestClient(mounted(store))
        for response in (http.get("/api/links", headers={"Authorization": "Bearer alr_0123456789abcdef_x"}),
                         http.post("/api/links", json=item(1), headers={"Authorization": "Bearer alr_01_x"})):
            assert answered(response, 503) == {"error": "the links' database is not answering; try again"}
            assert response.headers["retry-after"] == "5"
            assert "secret" not in response.text
            assert "secret" not in str(response.headers)
    finally:
        store.close()


def test_a_database_failing_mid_request_is_503(http: TestClient, store: LinkStore, tmp_path: Path) -> None:
    auth = bearer(store)
    answered(http.post("/api/links", json=item(1), headers=auth), 201)
    with sqlite3.connect(tmp_path / "links.db") as database:
        database.execute("DROP TABLE link_tags")
        database.execute("DROP TABLE links")
    answered(http.get("/api/links", headers=auth), 503)
    answered(http.post("/api/links", json=item(2), headers=auth), 503)


# --- the OpenAPI document ---------------------------------------------------------------------------------------------


def test_the_openapi_document_validates_and_names_every_route(http: TestClient, store: LinkStore) -> None:
    document = answered(http.get("/api/openapi.json"), 200)  # no token needed
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/api"}]
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], document["security"]) == ("http", "bearer", [{"bearer": []}])
    api = links_api(LinkAdmin(store, allowed_hosts=ALLOWED, public_url=PUBLIC), store)
    served = {route.path: route.methods - {"HEAD"} for route in api.routes if isinstance(route, Route)}
    described = {path: {method.upper() for method in item if method != "parameters"}
                 for path, item in document["paths"].items()}
    assert described == served
    schemas = document["components"]["schemas"]
    assert tuple(schemas["NewLink"]["properties"]) == FIELD_NAMES
    assert tuple(schemas["Link"]["properties"])[: len(FIELD_NAMES)] == FIELD_NAMES


def test_every_status_an_operation_gives_is_described(http: TestClient, store: LinkStore) -> None:
    document = http.get("/api/openapi.json").json()
    create = document["paths"]["/links"]["post"]["responses"]
    assert set(create) == {"201", "400", "401", "403", "409", "413", "415", "429", "503"}
    assert set(document["paths"]["/links/{code}"]["delete"]["responses"]) == {"204", "401", "403", "404", "429", "503"}
    assert set(document["paths"]["/links"]["get"]["responses"]) == {"200", "400", "401", "403", "429", "503"}


@pytest.mark.parametrize("slug", ["abc", "summer-sale", "A1-b2", "-abc", "abc-", "ab", "a_b", "a" * 64, "a" * 65])
def test_the_documented_slug_pattern_agrees_with_the_model(slug: str) -> None:
    # The pattern and length limits together are what the model takes (reserved words aside).
    documented = re.fullmatch(SLUG_PATTERN.strip("^$"), slug) is not None and 3 <= len(slug) <= 64
    assert documented == is_slug(slug)
