"""The OpenAPI 3.1 document of the short links' JSON API (router.serve.links_api), served at /api/openapi.json.

A link's properties come from the model itself: their names and order from FIELD_NAMES, their limits from
router.decision.short_links and the batch size from router.serve.link_admin, so a limit changed there is
described here without anyone remembering to. Only each field's JSON type is written below, once, and the
module refuses to load when that table and FIELD_NAMES disagree. The paths are relative to the server's URL
(where the API is mounted, `/api` in the router); tests/test_links_api.py compares them with the routes the
app serves.
"""

from __future__ import annotations

import copy
from typing import Any

from router.decision.short_links import (
    FIELD_NAMES,
    MAX_CLICKS_LIMIT,
    MAX_DESCRIPTION_CHARS,
    MAX_IMAGE_CHARS,
    MAX_LABEL_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    SLUG_MAX_CHARS,
    SLUG_MIN_CHARS,
    STAMP_CHANNELS,
)
from router.serve.link_admin import MAX_BATCH
from router.serve.link_store import MAX_LIST

MAX_BODY_BYTES = 1_048_576  # the largest request body the API reads (1 MB): a full batch takes well under it
SLUG_PATTERN = "^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"  # short_links.slug_problem; tested against it

_ERROR = {"$ref": "#/components/schemas/Error"}
_LINK = {"$ref": "#/components/schemas/Link"}


def _text(limit: int, description: str, *, minimum: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": minimum, "maxLength": limit, "description": description}


# Each field as a body gives it (create, batch, PATCH). `url`, `tags` and `disabled` always have a value;
# the others may be given as null (not set; in a PATCH, cleared): see _nullable.
_FIELDS: dict[str, dict[str, Any]] = {
    "url": {"type": "string", "minLength": 1,
            "description": "The Taobao or Tmall link (or share text) to open; its host must be on the router's "
                           "allowlist, and it is refused with the sentence a click on it would get."},
    "slug": {"type": "string", "minLength": SLUG_MIN_CHARS, "maxLength": SLUG_MAX_CHARS, "pattern": SLUG_PATTERN,
             "description": "A readable code of your choice instead of a random one (not a reserved word such "
                            "as api or go); set at creation only."},
    "channel": {"type": "string", "enum": list(STAMP_CHANNELS),
                "description": "The channel the click is stamped with (/go?ch=)."},
    "advertiser": _text(MAX_LABEL_CHARS, "Whose link this is; a links:write token fills in its own.", minimum=1),
    "campaign": _text(MAX_LABEL_CHARS, "A campaign name, for reports.", minimum=1),
    "tags": {"type": "array", "maxItems": MAX_TAGS,
             "items": {"type": "string", "pattern": f"^[A-Za-z0-9-]{{1,{MAX_TAG_CHARS}}}$"},
             "description": "Labels to filter by (kept in lower case, each once); the router's rules can read them."},
    "title": _text(MAX_TITLE_CHARS, "The preview's title."),
    "description": _text(MAX_DESCRIPTION_CHARS, "The preview's description."),
    "image": {"type": "string", "format": "uri", "maxLength": MAX_IMAGE_CHARS,
              "description": "The preview's image: an https URL on a host name."},
    "expires_at": {"type": "string", "format": "date-time",
                   "description": "When the link stops working: ISO 8601 with an offset, in the future."},
    "max_clicks": {"type": "integer", "minimum": 1, "maximum": MAX_CLICKS_LIMIT,
                   "description": "How many clicks the link serves, at most."},
    "disabled": {"type": "boolean", "description": "A disabled link answers like an unknown one."},
}
if tuple(_FIELDS) != FIELD_NAMES:
    raise ImportError("router.serve.openapi: the link's fields and short_links.FIELD_NAMES disagree")
_NOT_NULL = ("url", "tags", "disabled")


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    nullable = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        nullable["enum"] = [*schema["enum"], None]
    return nullable


def _fields() -> dict[str, Any]:
    return {name: schema if name in _NOT_NULL else _nullable(schema) for name, schema in _FIELDS.items()}


def _schemas() -> dict[str, Any]:
    new_link = {"type": "object", "properties": _fields(), "required": ["url"], "additionalProperties": False}
    patch = {"type": "object", "properties": {name: schema for name, schema in _fields().items() if name != "slug"},
             "additionalProperties": False,
             "description": "Only the fields given change; null clears one. The slug can't be changed."}
    link = {"type": "object",
            "properties": {**_fields(),
                           "code": {"type": "string", "description": "The random code, or the slug."},
                           "short_url": {"type": "string", "format": "uri"},
                           "created_at": {"type": "string", "format": "date-time"},
                           "updated_at": {"type": "string", "format": "date-time"},
                           "clicks": {"type": "integer", "minimum": 0},
                           "created_by": {"type": "string", "description": "The id of the token that created it."}},
            "required": [*FIELD_NAMES, "code", "short_url", "created_at", "updated_at", "clicks", "created_by"]}
    error = {"type": "object", "required": ["error"],
             "properties": {"error": {"type": "string"},
                            "fields": {"type": "object", "additionalProperties": {"type": "string"},
                                       "description": "Each bad field (links[i].field in a batch), and what "
                                                      "is wrong with it."}}}
    return {
        "NewLink": new_link, "LinkPatch": patch, "Link": link, "Error": error,
        "LinkList": {"type": "object", "required": ["links", "next_cursor"],
                     "properties": {"links": {"type": "array", "items": _LINK},
                                    "next_cursor": {"type": ["string", "null"],
                                                    "description": "The next page's cursor; null on the last."}}},
        "NewLinks": {"type": "object", "required": ["links"], "additionalProperties": False,
                     "properties": {"links": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                              "items": {"$ref": "#/components/schemas/NewLink"}}}},
        "Links": {"type": "object", "required": ["links"],
                  "properties": {"links": {"type": "array", "items": _LINK}}},
    }


def _error(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ERROR}}}
    if headers:
        answer["headers"] = {name: {"schema": {"type": "string"}, "description": text}
                             for name, text in headers.items()}
    return answer


_RESPONSES = {
    "BadRequest": _error("The body is not JSON or not an object, or fields are not valid (each named)."),
    "Unauthorized": _error("The token is missing or not valid.", **{"WWW-Authenticate": "Bearer"}),
    "Forbidden": _error("The token's scope or advertiser does not cover this."),
    "NotFound": _error("No link has this code."),
    "SlugTaken": _error("The slug already names a link."),
    "TooLarge": _error(f"The body is over {MAX_BODY_BYTES} bytes."),
    "WrongType": _error("The body is not sent as Content-Type: application/json."),
    "TooManyFailures": _error("Too many failed authentications from this address; every token is refused "
                              "until Retry-After seconds have passed.", **{"Retry-After": "Seconds to wait."}),
    "Unavailable": _error("The links' database is not answering.", **{"Retry-After": "Seconds to wait."}),
}
# Every operation that takes a token can be refused so; those that read a body, also so.
_AUTH = ("401", "403", "429", "503")
_BODY = ("400", "413", "415")
_REFS = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound", "409": "SlugTaken",
         "413": "TooLarge", "415": "WrongType", "429": "TooManyFailures", "503": "Unavailable"}


def _operation(summary: str, ok: str, answer: dict[str, Any] | None, refusals: tuple[str, ...], *,
               body: str | None = None, location: bool = False) -> dict[str, Any]:
    success: dict[str, Any] = {"description": summary}
    if answer is not None:
        success["content"] = {"application/json": {"schema": answer}}
    if location:
        success["headers"] = {"Location": {"schema": {"type": "string"}, "description": "The new link's URL here."}}
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {ok: success, **{status: {"$ref": f"#/components/responses/{_REFS[status]}"}
                                      for status in sorted(refusals)}},
    }
    if body is not None:
        schema = {"$ref": f"#/components/schemas/{body}"}
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return operation


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The link's code or slug."}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "adlink-router short links", "version": "1",
             "description": "Create, read, change and delete the short links /s/<code> that the router serves. "
                            "Every operation but this document takes an API token: Authorization: Bearer <token>."},
    "servers": [{"url": "/api"}],
    "security": [{"bearer": []}],
    "paths": {
        "/links": {
            "get": {**_operation("List links, in code order, a page at a time.", "200",
                                 {"$ref": "#/components/schemas/LinkList"}, ("400", *_AUTH)),
                    "parameters": [
                        _query("tag", {"type": "string"}, "Only links with this tag."),
                        _query("advertiser", {"type": "string"}, "Only this advertiser's links."),
                        _query("cursor", {"type": "string"}, "The next_cursor of the page before."),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": 100},
                               "Links per page."),
                    ]},
            "post": _operation("Create a link.", "201", _LINK, (*_AUTH, *_BODY, "409"), body="NewLink", location=True),
        },
        "/links:batch": {
            "post": _operation(f"Create 1 to {MAX_BATCH} links, all or nothing.", "201",
                               {"$ref": "#/components/schemas/Links"}, (*_AUTH, *_BODY, "409"), body="NewLinks"),
        },
        "/links/{code}": {
            "parameters": [_CODE],
            "get": _operation("Read a link.", "200", _LINK, (*_AUTH, "404")),
            "patch": _operation("Change some of a link's fields.", "200", _LINK, (*_AUTH, *_BODY, "404"),
                                body="LinkPatch"),
            "delete": _operation("Delete a link.", "204", None, (*_AUTH, "404")),
        },
        "/openapi.json": {
            "get": {"summary": "This document.", "security": [],
                    "responses": {"200": {"description": "This document.",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}}},
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "An API token (alr_…), from the router's operator."}},
        "schemas": _schemas(),
        "responses": _RESPONSES,
    },
}


def openapi_document(server_url: str = "/api") -> dict[str, Any]:
    """The document, for an API mounted at `server_url` (the request's root path)."""
    document = copy.deepcopy(_DOCUMENT)
    document["servers"] = [{"url": server_url or "/"}]
    return document
