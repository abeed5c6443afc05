"""The HTML the router answers with: the landing page and the block/error page.

Every value that comes from the request is escaped for where it lands (text or
attribute); the one inline script and style carry a per-response nonce named in
a strict Content-Security-Policy. Pages are small and self-contained: no
external scripts, fonts, images or trackers.
"""

from __future__ import annotations

import secrets
from html import escape

from router.deeplinks import app_location, web_location
from router.types import App, Context, Decision

_GUIDE_APPS = {
    App.WECHAT: "微信",
    App.WECOM: "企业微信",
    App.QQ: "QQ",
    App.WEIBO: "微博",
    App.ALIPAY: "支付宝",
    App.DINGTALK: "钉钉",
    App.DOUYIN: "抖音",
    App.OTHER_INAPP: "当前应用",
}

_STYLE = (
    "body{font:16px/1.5 -apple-system,system-ui,sans-serif;margin:0;padding:24px;color:#222;background:#fafafa}"
    "main{max-width:28rem;margin:0 auto}h1{font-size:1.3rem}"
    ".hint{background:#fff3e0;border-radius:8px;padding:12px}"
    "a.button,button{display:block;width:100%;box-sizing:border-box;margin:12px 0;padding:12px;border:0;"
    "border-radius:8px;background:#ff5000;color:#fff;font-size:1rem;text-align:center;text-decoration:none}"
    "a.secondary{background:#eee;color:#222}"
    "textarea{width:100%;box-sizing:border-box;font:inherit;padding:8px}"
)

_COPY_SCRIPT = (
    "document.getElementById('copy').addEventListener('click',function(){"
    "var t=document.getElementById('token');t.select();"
    "var done=function(){document.getElementById('copied').textContent='已复制，打开淘宝即可查看';};"
    "if(navigator.clipboard){navigator.clipboard.writeText(t.value).then(done,function(){"
    "document.execCommand('copy');done();});}else{document.execCommand('copy');done();}});"
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def content_security_policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _page(title: str, body: str, nonce: str, script: str = "") -> str:
    script_tag = f"<script nonce=\"{nonce}\">{script}</script>" if script else ""
    return (
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<meta name=\"robots\" content=\"noindex\">"
        f"<title>{escape(title)}</title><style nonce=\"{nonce}\">{_STYLE}</style></head>"
        f"<body><main>{body}</main>{script_tag}</body></html>"
    )


def landing_page(ctx: Context, decision: Decision) -> tuple[str, str]:
    """(html, nonce) for a landing decision."""
    nonce = secrets.token_urlsafe(16)
    link = ctx.link
    name = "天猫" if link.platform.value == "tmall" else "淘宝"
    heading = link.title or f"在{name}中查看"
    parts = [f"<h1>{escape(heading)}</h1>"]
    app_name = _GUIDE_APPS.get(ctx.client.app)
    moments = decision.landing == "moments"
    if app_name:
        where = "朋友圈里的链接" if moments and ctx.client.app is App.WECHAT else f"{app_name}内"
        parts.append(
            f"<p class=\"hint\">{where}无法直接打开{name}。请点击右上角 <b>···</b>，"
            "选择「在浏览器打开」；或复制下方内容后打开淘宝 App。</p>"
        )
    app_href, _ = app_location(link, ctx.client, ctx.forward)
    web = web_location(link, ctx.client, ctx.forward)
    if app_href and not app_name:
        parts.append(f"<a class=\"button\" href=\"{escape(app_href)}\">打开{name} App</a>")
    if web:
        parts.append(f"<a class=\"button secondary\" href=\"{escape(web)}\">继续在网页中查看</a>")
    # Moments has banned share-code (口令) text since 2018: offer only the plain link there, unless
    # the code is all there is (a token-only share text): then it is the only way forward.
    copy_text = web or ""
    if link.token and (not moments or not web):
        copy_text = f"{web} ￥{link.token}￥" if web else f"￥{link.token}￥"
    if copy_text:
        parts.append(
            "<label for=\"token\">复制后打开淘宝 App：</label>"
            f"<textarea id=\"token\" rows=\"3\" readonly>{escape(copy_text)}</textarea>"
            "<button id=\"copy\" type=\"button\">复制</button><p id=\"copied\" role=\"status\"></p>"
        )
    if app_href and app_name:
        # In-app browsers block app schemes for most pages: offer the attempt, but not as the main way.
        parts.append(f"<p><a href=\"{escape(app_href)}\">已安装{name}？尝试直接打开</a></p>")
    return _page(heading, "".join(parts), nonce, _COPY_SCRIPT if copy_text else ""), nonce


def message_page(status: int, message: str) -> tuple[str, str]:
    """(html, nonce) for a block or a bad request: says what was wrong."""
    nonce = secrets.token_urlsafe(16)
    body = f"<h1>无法打开此链接 · This link can't be opened</h1><p>{escape(message)}</p><p>HTTP {status}</p>"
    return _page("无法打开此链接", body, nonce), nonce
