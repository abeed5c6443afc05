"""Every setting the router reads, with its flag, default and meaning: the one place they are described.

docs/reference-settings.md is generated from it (`python -m router docs settings`; a test fails when the
committed page differs), and a test holds it equal to the ROUTER_* names the code reads, so a setting can't be
added, or dropped, without its line here. Text in Markdown, as the page shows it.
"""

from __future__ import annotations

from typing import NamedTuple


class SettingDoc(NamedTuple):
    name: str  # the environment variable, "" for a command-line flag alone
    flag: str  # the command-line flag that sets it too, "" for none
    default: str
    meaning: str


SETTINGS: tuple[SettingDoc, ...] = (
    SettingDoc('ROUTER_RULES_DIR', '`--rules DIR`', 'the shipped `rules/`',
               'rules directory; for `serve`, also the `https://` URL of a rules bundle'),
    SettingDoc('ROUTER_RULES_POLL_SECONDS', '', '`0.5` for a directory, `30` for a URL',
               'how often `serve` looks for new rules; `0`: only on SIGHUP'),
    SettingDoc('ROUTER_RULES_TIMEOUT_SECONDS', '', '`5`',
               'deadline for fetching a rules bundle, the whole exchange (0.1–60)'),
    SettingDoc('ROUTER_HOST', '`serve --host`', '`127.0.0.1`',
               'listen address (`0.0.0.0` in the Docker image)'),
    SettingDoc('ROUTER_PORT', '`serve --port`', '`8000`',
               'listen port'),
    SettingDoc('', '`serve --workers N`', '`1`',
               'worker processes, each on its own `SO_REUSEPORT` socket so the kernel spreads connections '
               'evenly (Linux); the parent restarts a worker that dies'),
    SettingDoc('ROUTER_LOG_LEVEL', '`serve --log-level`', '`info`',
               'level of the access and server lines; clicks are written whatever it says'),
    SettingDoc('ROUTER_CLICK_LOG', '', '`stdout`',
               'where click lines go: `stdout`, `stderr` or `off`'),
    SettingDoc('ROUTER_DRAIN_SECONDS', '', '`5`',
               'on SIGTERM: `/readyz` answers 503 this long while clicks are still served (each answer '
               '`Connection: close`), then the router stops accepting, finishes what is in flight and exits 0; '
               'a second SIGTERM ends the drain early, Ctrl+C skips it (0–600)'),
    SettingDoc('ROUTER_KEEPALIVE_SECONDS', '', '`5`',
               'how long an idle kept-alive client connection stays open (1–600)'),
    SettingDoc('ROUTER_SHUTDOWN_SECONDS', '', '`10`',
               'after the drain, how long requests in flight get to finish (1–600); give the container at least'
               ' drain + shutdown to stop (`docker stop -t`, Kubernetes `terminationGracePeriodSeconds`)'),
    SettingDoc('ROUTER_SIGNING_KEYS', '',
               'on loopback only: a public development key, with a warning; elsewhere required (or `serve '
               '--development-key`)',
               '`kid:secret,kid:secret` for `/ad` links; key ids letters and digits, secrets ≥ 16 characters; a'
               " mistake is named by its entry's position, never echoed"),
    SettingDoc('ROUTER_SIGNING_KEYS_FILE', '', '—',
               'a file holding the same, one entry per line or comma-separated (a mounted Kubernetes Secret); '
               'not with `ROUTER_SIGNING_KEYS`'),
    SettingDoc('ROUTER_ALLOWED_HOSTS', '', '`taobao.com,tmall.com,tb.cn,tmall.hk`',
               'destination hosts; a host matches exactly or as a dot-boundary subdomain'),
    SettingDoc('ROUTER_FORWARD_PARAMS', '', '`gdt_vid,qz_gdt,weixinadinfo,click_id`',
               'query parameters passed on to the destination (names read in any case, passed on as spelled '
               'here, once)'),
    SettingDoc('ROUTER_FALLBACK_DELAY_MS', '', '`2000`',
               'landing page in a phone browser: how long to wait for the app before the web page (300–10000)'),
    SettingDoc('ROUTER_EXPAND_HOSTS', '', '`m.tb.cn,e.tb.cn,s.click.taobao.com`',
               'short-link hosts the server expands and contacts (exact names); `none`: no expansion'),
    SettingDoc('ROUTER_EXPAND_TIMEOUT_SECONDS', '', '`1.5`',
               'deadline for expanding one short link, every redirect included (0.1–10)'),
    SettingDoc('ROUTER_EXPAND_UPSTREAM', '', 'unset',
               '**tests only**: a loopback origin (`http://127.0.0.1:PORT`) that stands in for every expansion '
               'host; refused otherwise'),
    SettingDoc('ROUTER_SERVER_NAMES', '', 'any',
               'Host names the router answers to (`go.example.com`, `*.example.com`); any other Host is a 400'),
    SettingDoc('ROUTER_TRUSTED_PROXIES', '', 'none',
               'peer addresses or networks (`10.0.0.0/8`, comma-separated, or `*`) whose '
               "`X-Forwarded-For`/`-Proto` is believed (a load balancer in front); nobody's by default; "
               'anything else stops `serve` with one line; `*` is accepted with a warning at start ([settings '
               'that matter](production.md#settings-that-matter))'),
    SettingDoc('ROUTER_METRICS_FROM', '', '`private`',
               'who may read `/metrics`: `private` (loopback, RFC 1918, 100.64/10, link-local, IPv6 ULA), '
               '`any`, `off` (no `/metrics`), or networks (`10.0.0.0/8,127.0.0.1`); others get a 403'),
    SettingDoc('ROUTER_REDIS_URL', '', 'unset',
               "the fleet's shared store, `redis://[:password@]host:port[/db]` or `rediss://` (TLS): a signed "
               "ad link's click id used on any router is a replay on all of them. Unset, each process remembers"
               ' its own (the embedded default: nothing to start). Never shown with its password'),
    SettingDoc('ROUTER_REDIS_TIMEOUT_MS', '', '`250`',
               'a click waits at most this long for the shared store, all its calls together (1–1000; [Running '
               'a fleet](fleet.md#running-a-fleet) says how it was chosen); after three failures in a row the '
               'store is left alone for a second at a time while each process answers from its own memory, '
               'counted in `adlink_shared_store_fallbacks_total` and logged once a minute. `/readyz` says '
               'whether the last call went well (`shared_store.up`), never where the store is'),
    SettingDoc('ROUTER_LIMIT_PER_ADDRESS', '', 'no limit',
               'clicks one client may make, `COUNT/WINDOW` (`120/60s`, `20/1m`, `1000/1h`; a window of 1 s to 1'
               ' day); past it a 429 page says which limit and when to try again (`Retry-After`). A client is '
               'its IPv4 address, or its IPv6 network (`ROUTER_LIMIT_IPV6_PREFIX`); an IPv4-mapped IPv6 address'
               ' is read as IPv4. Only clicks let through count. Counted by the whole fleet with '
               '`ROUTER_REDIS_URL`, per process without. Behind a load balancer it needs '
               '`ROUTER_TRUSTED_PROXIES`'),
    SettingDoc('ROUTER_LIMIT_PER_AD_LINK', '', 'no limit',
               'clicks one signed `/ad` link (by what its signature covers) may get from one client, `COUNT/WINDOW`'),
    SettingDoc('ROUTER_LIMIT_IPV6_PREFIX', '', '`64`',
               'the bits of an IPv6 address that name one client for every limit (32–128): a /64 is one '
               "customer's, who can pick any address in it"),
    SettingDoc('ROUTER_LIMIT_BEACONS_PER_ADDRESS', '', '`600/1h`',
               'outcome beacons one client may send, `COUNT/WINDOW`; `off`: no bound. Generous: carrier-grade '
               'NAT puts many phones behind one IPv4 address'),
    SettingDoc('ROUTER_LIMIT_BEACONS_PER_VISITOR', '', '`60/1h`',
               'outcome beacons one visitor may send (a page view sends at most about 7); `off`: no bound'),
    SettingDoc('ROUTER_METRICS_PORT', '', 'unset',
               "serve `/metrics` on this port only (bound on `ROUTER_HOST` like the clicks' port), never on the"
               " clicks' port: a port your Service or load balancer does not expose. The probes answer on both "
               "ports; clicks only on the clicks' port. With `ROUTER_METRICS_FROM=off` the port still opens, "
               'for the probes'),
    SettingDoc('ROUTER_METRICS_DIR', '', 'a temporary directory',
               'where the workers of `serve --workers N` share their counts (a writable volume under a '
               'read-only root); one process ignores it'),
    SettingDoc('ROUTER_DATABASE_URL', '', '`sqlite:///$XDG_DATA_HOME/adlink-router/links.db`',
               'short links and API tokens: `sqlite:///PATH` or '
               '`postgresql://user:password@host:port/database`, read by every command; its address, user and '
               'password never printed ([short links and the API](links.md))'),
    SettingDoc('ROUTER_DATABASE_UPGRADE', '', '`start` for SQLite, `check` for PostgreSQL',
               'at `serve`: bring the schema up to date (`start`), or refuse to start on an old one (`check`: '
               'run `adlink-router db upgrade`)'),
    SettingDoc('ROUTER_PUBLIC_URL', '', '`http://localhost:8000`',
               'the origin short links are made with (`short_url`, QR codes, `og:url`): '
               "`https://go.example.com`, no path. No URL is ever built from a request's `Host`"),
    SettingDoc('ROUTER_LINKS_KEPT', '', '`100000`',
               'short links each process keeps (100–10,000,000)'),
    SettingDoc('ROUTER_UA_TABLES', '', '`startup`',
               "ua-parser's tables (tens of megabytes, a noticeable pause to build: [speed](speed.md)): `startup` "
               'builds them before the router is ready, so no click waits for them; `lazy` builds them when a '
               'user agent first needs them (named apps on phones and the common browsers never do; an unusual '
               'platform loads the OS table, an unknown browser all of them), and keeps that memory until then'),
)
