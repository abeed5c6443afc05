"""The baseline the router is measured against: a bare Starlette app on the same server stack.

/go answers a RedirectResponse to a fixed Taobao item; /landing answers an HTMLResponse of
BARE_HTML_BYTES bytes (the harness sets it to the size of the router's landing page).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

_HTML = "<!doctype html><title>x</title>" + "x" * max(0, int(os.environ.get("BARE_HTML_BYTES", "4000")) - 30)


async def go(request: Request) -> Response:
    return RedirectResponse("taobao://item.taobao.com/item.htm?id=123456", status_code=302)


async def landing(request: Request) -> Response:
    return HTMLResponse(_HTML)


app = Starlette(routes=[Route("/go", go), Route("/landing", landing)])
