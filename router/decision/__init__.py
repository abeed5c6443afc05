"""The click decision: what a click is (link, client, channel, ad claim) and what the rules answer.

Pure and fast: no network, no Starlette, no clock or User-Agent parsing inside a condition. Imports only
the standard library, its parsing libraries and other `router.decision` modules; never `serve` or `policy`.
"""
