"""Settings from the environment (and CLI flags), read once at startup.

What each one means, its default and its range: router/serve/setting_docs.py, the one list of them, from
which docs/reference-settings.md is generated (a test holds that list equal to the ROUTER_* names read here
and by the command line).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from router.decision.apps import bundled_rules_dir  # re-exported: the serving side and tests read it here
from router.decision.click import DEFAULT_FORWARD_PARAMS, ClickSettings
from router.decision.links import DEFAULT_ALLOWED_HOSTS
from router.decision.signing import MIN_SECRET_CHARS, SigningKeyError, SigningKeys
from router.serve.expand import DEFAULT_EXPAND_HOSTS, DEFAULT_EXPAND_TIMEOUT
from router.serve.limits import Limit, parse_limit

VISITOR_COOKIE = "adlink_vid"
# How long a phone's landing page waits for the app before it falls back to the web page. Slow phones
# and confirm dialogs need well over a second (docs/wechat-and-taobao.md: the usual wait is 1.5-2.5 s).
DEFAULT_FALLBACK_DELAY_MS = 2000
# A directory is cheap to look at (a few stat calls), so it is looked at often enough to apply a change
# within two seconds; a URL costs the bundle's server a request per node, so a fleet polls it gently.
DIRECTORY_POLL_SECONDS = 0.5
URL_POLL_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 5.0
DEFAULT_DRAIN_SECONDS = 5.0
DEFAULT_KEEPALIVE_SECONDS = 5.0
DEFAULT_SHUTDOWN_SECONDS = 10.0
# A click waits at most this long for the shared store. A Redis on the same network answers in well under a
# millisecond, but the answer is read when the event loop gets to it: on a busy node a deadline of tens of
# milliseconds is missed while the store is fine, and each miss is a replay check gone per process. This one
# leaves room for a loaded loop (benchmarks/store_deadline.py measures deadlines side by side: docs/fleet.md).
# It is waited out in full only while the store hangs, and then for FAILURES_TO_REST calls (router.serve.shared).
DEFAULT_REDIS_TIMEOUT_MS = 250
# Outcome beacons (router.serve.outcomes). One landing page view sends at most about 7. A visitor who opens
# eight or so landing pages within an hour is already a keen one: 60 an hour per visitor. A client address
# is shared: carrier-grade NAT puts many phones behind one IPv4 address (an IPv6 client is its /64), so
# ten times that, about 85 page views an hour from one address. Both are far above what people send and
# far below what a script flooding the outcome counts would.
DEFAULT_BEACONS_PER_ADDRESS = Limit(600, 3600)
DEFAULT_BEACONS_PER_VISITOR = Limit(60, 3600)
DEFAULT_IPV6_PREFIX = 64  # one customer's allocation: a client picks any address in it
# Short links (router.serve.kept_links): how many each process keeps, and the origin their URLs are made with.
# No URL is ever built from a request's Host header, so the public origin is a setting.
DEFAULT_LINKS_KEPT = 100_000
DEFAULT_PUBLIC_URL = "http://localhost:8000"
DATABASE_UPGRADES = ("start", "check")
# Who may read /metrics by default: the networks a Prometheus server scrapes from (loopback, RFC 1918,
# carrier-grade NAT as some clusters use, link-local, IPv6 unique-local). Rule ids and traffic volumes are
# nobody else's business; behind a trusted proxy the address is the client's, so the public is refused.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PRIVATE_NETWORKS: tuple[Network, ...] = tuple(ipaddress.ip_network(net) for net in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))
ANY_NETWORK: tuple[Network, ...] = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def _integer(name: str, text: str, default: int, low: int, high: int, unit: str = "milliseconds") -> int:
    """A whole number from the environment, `default` when unset; ValueError naming the setting and its range."""
    if not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        kind = f"a number of {unit}" if unit else "a port number"
        raise ValueError(f"{name} must be {kind}, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}{' ' + unit if unit else ''}, got {value}")
    return value


def _seconds(name: str, text: str, default: float, low: float, high: float) -> float:
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g} seconds, got {text.strip()}")
    return value


def _poll_seconds(text: str) -> float:
    value = _seconds("ROUTER_RULES_POLL_SECONDS", text, 0, 0, 86_400)
    if 0 < value < 0.1:  # 0 turns polling off; anything above it should not spin
        raise ValueError(
            f"ROUTER_RULES_POLL_SECONDS must be 0 (reload on SIGHUP only) or at least 0.1, got {text.strip()}"
        )
    return value


def is_rules_url(text: str) -> bool:
    """Whether a --rules value names a remote bundle rather than a directory."""
    return text.lower().startswith(("https://", "http://"))


def check_rules_url(url: str) -> str:
    """The URL of a rules bundle, or ValueError: https only, plain http only to this machine."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if not host:
        raise ValueError(f"rules URL {url!r} has no host; expected e.g. https://rules.example.com/rules.yaml")
    if scheme == "http" and not _is_loopback(host):
        raise ValueError(
            f"rules URL {url!r} uses plain http, which anyone on the way could alter; use https:// "
            "(plain http:// is accepted only for loopback hosts, 127.0.0.1, ::1 or localhost, for local development)"
        )
    return url


def _is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, as --host or a URL gives it) is this machine's loopback only:
    127.0.0.0/8, ::1 (also as [::1] or ::ffff:127.x.y.z) or localhost. Any other name, and "" or 0.0.0.0
    (every address), is not."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


# The development key (router.decision.signing) is public: anyone can sign ad links and forge outcome
# beacons with it. It is taken without being asked for only by a server that nobody else reaches.
SIGNING_KEYS_FORMAT = (f"ROUTER_SIGNING_KEYS=kid:secret[,kid:secret…] (key ids letters and digits, secrets of "
                       f"{MIN_SECRET_CHARS} characters or more, the first signs) or ROUTER_SIGNING_KEYS_FILE")


def check_serving_keys(keys: SigningKeys, host: str, development_key: bool) -> None:
    """For `serve` on `host`: SigningKeyError (one sentence) when there are no signing keys and the server
    listens beyond loopback without --development-key, or when --development-key comes with keys."""
    if keys.development and not development_key and not _is_loopback(host):
        where = host.strip() or "every address"
        raise SigningKeyError(
            f"no signing keys, and serve listens on {where}, which other machines reach: set "
            f"{SIGNING_KEYS_FORMAT}; or, for a demo only, add --development-key to serve with the public "
            "development key (anyone can sign ad links with it)")
    _not_both(keys, development_key)


def check_signing_keys(keys: SigningKeys, development_key: bool) -> None:
    """For `sign`: SigningKeyError (one sentence) when there are no signing keys and --development-key was
    not given (a link signed with the public key is worth nothing), or when it comes with keys."""
    if keys.development and not development_key:
        raise SigningKeyError(
            f"no signing keys: set {SIGNING_KEYS_FORMAT}; or, for a demo only, add --development-key to sign "
            "with the public development key (anyone can sign such links)")
    _not_both(keys, development_key)


def _not_both(keys: SigningKeys, development_key: bool) -> None:
    if development_key and not keys.development:
        raise SigningKeyError("--development-key is given, but so are signing keys (ROUTER_SIGNING_KEYS or "
                              "ROUTER_SIGNING_KEYS_FILE); drop one of them")


def _ua_tables(text: str) -> bool:
    value = text.strip().lower()
    if value == "lazy":
        return False
    if value in ("", "startup"):  # by default: the first click costs what the thousandth does
        return True
    raise ValueError(f"ROUTER_UA_TABLES must be 'lazy' or 'startup', got {text!r}")


def _expand_hosts(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("none", "off"):
        return ()
    return _csv(text) or DEFAULT_EXPAND_HOSTS


def check_expand_upstream(text: str) -> str:
    """ROUTER_EXPAND_UPSTREAM as an origin (http://127.0.0.1:PORT), or ValueError: loopback addresses only."""
    text = text.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback or parts.path not in ("", "/") or parts.query:
        raise ValueError(
            f"ROUTER_EXPAND_UPSTREAM must be a loopback origin such as http://127.0.0.1:8081, got {text!r}; "
            "it only points tests at a local server and is never needed in production"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _signing_keys(env: Mapping[str, str]) -> SigningKeys:
    keys_text = env.get("ROUTER_SIGNING_KEYS", "").strip()
    keys_file = env.get("ROUTER_SIGNING_KEYS_FILE", "").strip()
    if keys_text and keys_file:
        raise SigningKeyError("ROUTER_SIGNING_KEYS and ROUTER_SIGNING_KEYS_FILE are both set; set one of them")
    if keys_file:
        return SigningKeys.from_file(keys_file)
    return SigningKeys.parse(keys_text) if keys_text else SigningKeys.development_keys()


def check_redis_url(text: str) -> str:
    """ROUTER_REDIS_URL as given, or ValueError naming what is wrong (never echoing a password)."""
    url = text.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        shown = f"{parts.scheme}://…" if parts.scheme else "a value without a scheme"
        raise ValueError(f"ROUTER_REDIS_URL must be redis://[:password@]host:port[/db] or rediss://… (TLS), "
                         f"got {shown}")
    try:
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        raise ValueError("ROUTER_REDIS_URL has a port that is not a number from 1 to 65535") from None
    return url


def default_database_url(env: Mapping[str, str]) -> str:
    """The embedded default: an SQLite file in the user's data directory ($XDG_DATA_HOME, else
    ~/.local/share), `adlink-router/links.db`, so the quick start needs no setup and no repository file."""
    base = env.get("XDG_DATA_HOME", "").strip() or str(Path(env.get("HOME", "") or Path.home()) / ".local" / "share")
    return f"sqlite:///{Path(base) / 'adlink-router' / 'links.db'}"


def check_database_url(text: str) -> str:
    """ROUTER_DATABASE_URL as given ("" when unset), or ValueError naming both forms, never the text."""
    url = text.strip()
    if not url:
        return ""
    from router.serve.link_store import engine_url  # SQLAlchemy: loaded only where a database is read

    engine_url(url)  # raises ValueError with the setting's forms
    return url


def check_public_url(text: str) -> str:
    """ROUTER_PUBLIC_URL as an origin (`https://host[:port]`, no path), or ValueError."""
    url = text.strip().rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment \
            or "@" in parts.netloc:
        raise ValueError(f"ROUTER_PUBLIC_URL must be an origin such as https://go.example.com (no path), got {url!r}")
    try:
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        raise ValueError("ROUTER_PUBLIC_URL has a port that is not a number from 1 to 65535") from None
    return url


def _choice(name: str, text: str, choices: tuple[str, ...]) -> str:
    value = text.strip().lower()
    if value and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {text.strip()!r}")
    return value


def _metrics_from(text: str) -> tuple[Network, ...]:
    """ROUTER_METRICS_FROM as networks; () when /metrics is off."""
    value = text.strip().lower()
    if value in ("", "private"):
        return PRIVATE_NETWORKS
    if value == "any":
        return ANY_NETWORK
    if value in ("off", "none"):
        return ()
    networks = []
    for part in _csv(value):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"ROUTER_METRICS_FROM must be private, any, off or a list of networks such as "
                             f"10.0.0.0/8,127.0.0.1; {part!r} is none of them") from None
    return tuple(networks)


def address_in(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether an address (a client's) is in one of the networks; a name that is no address is in none,
    except for `any` (ANY_NETWORK), which takes every client."""
    if networks is ANY_NETWORK:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.1.2.3 from a dual-stack socket is 10.1.2.3
    return any(ip in network for network in networks)


def _proxies(text: str) -> tuple[str, ...]:
    """ROUTER_TRUSTED_PROXIES: addresses or networks (or `*`). Anything else is refused, never half-trusted:
    a non-empty value turns on belief in X-Forwarded-For and X-Request-ID."""
    proxies = _csv(text)
    for proxy in proxies:
        if proxy == "*":
            continue
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"ROUTER_TRUSTED_PROXIES must be addresses or networks such as 10.0.0.0/8 "
                             f"(comma-separated, or *), got {proxy[:60]!r}") from None
    return proxies


def trusted_proxies_warning(proxies: tuple[str, ...]) -> str | None:
    """A sentence for the log at start when ROUTER_TRUSTED_PROXIES believes everyone (`*`); None otherwise."""
    if "*" not in proxies:
        return None
    return ("ROUTER_TRUSTED_PROXIES is '*': every peer's X-Forwarded-For is believed, so any client can pick the "
            "address the click and beacon limits and the logs see; this is right only when every connection "
            "reaches the router through your own proxy (a private network, or a load balancer that overwrites "
            "the header)")


def _beacon_limit(name: str, env: Mapping[str, str], default: Limit) -> Limit | None:
    """A beacon bound: `default` when unset; None when empty or `off`."""
    if name not in env:
        return default
    text = env[name]
    if text.strip().lower() in ("", "off"):
        return None
    return parse_limit(name, text)


def _csv(text: str, *, lower: bool = True) -> tuple[str, ...]:
    parts = (part.strip() for part in text.split(","))
    return tuple(part.lower() if lower else part for part in parts if part)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(ClickSettings):
    """Everything the server is told; what reading a click needs (allowed hosts, signing keys, forwarded
    parameters) comes from ClickSettings, so the decision never imports the server's settings."""

    rules_dir: Path
    fallback_delay_ms: int = DEFAULT_FALLBACK_DELAY_MS
    server_names: tuple[str, ...] = ()  # Host names served; empty: any (no URL is ever built from Host)
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For is believed; empty: nobody's
    rules_url: str = ""  # a remote bundle instead of rules_dir
    rules_poll_seconds: float | None = None  # None: DIRECTORY_POLL_SECONDS or URL_POLL_SECONDS; 0: never
    rules_timeout_seconds: float = FETCH_TIMEOUT_SECONDS
    # Short-link expansion. Built in code, Settings expands nothing unless given hosts (tests stay offline);
    # from the environment it expands DEFAULT_EXPAND_HOSTS.
    expand_hosts: tuple[str, ...] = ()
    expand_timeout_seconds: float = DEFAULT_EXPAND_TIMEOUT
    expand_upstream: str = ""  # tests only: a loopback origin that stands in for every expansion host
    # ua-parser's tables (router.decision.clients): built at start-up, before ready, so the first unusual user
    # agent is not the one that waits for them; or, to save their tens of megabytes, when one first needs them
    # (most never do: named apps on phones and the common browsers are read without them).
    ua_tables_at_startup: bool = True
    # Stopping (router.serve.drain) and connections: a drain long enough for a load balancer to notice the
    # readiness probe fail, then at most shutdown_seconds for requests in flight.
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS
    shutdown_seconds: float = DEFAULT_SHUTDOWN_SECONDS
    # /metrics (router.serve.metrics): the networks that may scrape it (empty: no /metrics), and the
    # directory where the workers of `serve --workers N` share their counts (empty: this process alone).
    metrics_from: tuple[Network, ...] = PRIVATE_NETWORKS
    metrics_dir: str = ""
    # A port of its own for /metrics (0: the clicks' port). What reaches the router through a Service or a
    # NAT that hides the client's address can't be told from Prometheus by address: a port that only the
    # cluster reaches can.
    metrics_port: int = 0
    # The fleet's shared store (router.serve.shared): empty, each process keeps its own.
    redis_url: str = field(default="", repr=False)  # may hold a password: never in a repr
    redis_timeout_seconds: float = DEFAULT_REDIS_TIMEOUT_MS / 1000
    # Click limits (router.serve.limits): None, no limit. An IPv6 client is counted by its network.
    limit_per_address: Limit | None = None
    limit_per_ad_link: Limit | None = None
    limit_ipv6_prefix: int = DEFAULT_IPV6_PREFIX
    # Outcome beacons per client and per visitor: None, no bound.
    limit_beacons_per_address: Limit | None = DEFAULT_BEACONS_PER_ADDRESS
    limit_beacons_per_visitor: Limit | None = DEFAULT_BEACONS_PER_VISITOR
    # Short links (router.serve.kept_links, router.serve.link_store). Built in code, Settings has no database
    # (no /s/ links, no /api/: tests stay in their tmp_path); from the environment, the default SQLite file.
    database_url: str = field(default="", repr=False)  # may hold a password: never in a repr
    database_upgrade: str = ""  # "start" or "check"; "" : start for SQLite, check for PostgreSQL
    public_url: str = DEFAULT_PUBLIC_URL
    links_kept: int = DEFAULT_LINKS_KEPT

    @property
    def upgrades_at_start(self) -> bool:
        """Whether `serve` brings the database's schema up to date itself (else it refuses an old one)."""
        if self.database_upgrade:
            return self.database_upgrade == "start"
        return self.database_url.startswith("sqlite:")

    @property
    def rules_location(self) -> str:
        """Where rules come from, as given: the bundle's URL or the directory."""
        return self.rules_url or str(self.rules_dir)

    @property
    def rules_poll_interval(self) -> float:
        if self.rules_poll_seconds is not None:
            return self.rules_poll_seconds
        return URL_POLL_SECONDS if self.rules_url else DIRECTORY_POLL_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, rules_dir: str | None = None,
                 serving: bool = True) -> Settings:
        """Settings from environment variables; raises ValueError (SigningKeyError) with a clear sentence.
        Without `serving` (the policy owners' commands, explain), what only a server uses (its drain,
        metrics, store, limits, proxies, page timing) is not read: a bad one is the server's to report."""
        env = os.environ if env is None else env
        served: Mapping[str, str] = env if serving else {}
        keys = _signing_keys(env)
        directory = rules_dir or env.get("ROUTER_RULES_DIR") or str(bundled_rules_dir())
        url = check_rules_url(directory) if is_rules_url(directory) else ""
        poll_text = served.get("ROUTER_RULES_POLL_SECONDS", "")  # only a running server polls
        return cls(
            rules_dir=Path(directory),  # for a URL, what the commands that read directories will say is missing
            rules_url=url,
            rules_poll_seconds=_poll_seconds(poll_text) if poll_text.strip() else None,
            rules_timeout_seconds=_seconds("ROUTER_RULES_TIMEOUT_SECONDS", env.get("ROUTER_RULES_TIMEOUT_SECONDS", ""),
                                           FETCH_TIMEOUT_SECONDS, 0.1, 60),
            allowed_hosts=_csv(env.get("ROUTER_ALLOWED_HOSTS", "")) or DEFAULT_ALLOWED_HOSTS,
            signing_keys=keys,
            # Query parameter names are case-sensitive: forwarded exactly as configured.
            forward_params=_csv(env.get("ROUTER_FORWARD_PARAMS", ""), lower=False) or DEFAULT_FORWARD_PARAMS,
            fallback_delay_ms=_integer("ROUTER_FALLBACK_DELAY_MS", served.get("ROUTER_FALLBACK_DELAY_MS", ""),
                                       DEFAULT_FALLBACK_DELAY_MS, 300, 10_000),
            # Only a server expands short links: the commands read links as they are.
            expand_hosts=_expand_hosts(served.get("ROUTER_EXPAND_HOSTS", "")),
            expand_timeout_seconds=_seconds(
                "ROUTER_EXPAND_TIMEOUT_SECONDS", served.get("ROUTER_EXPAND_TIMEOUT_SECONDS", ""),
                DEFAULT_EXPAND_TIMEOUT, 0.1, 10,
            ),
            expand_upstream=check_expand_upstream(served.get("ROUTER_EXPAND_UPSTREAM", "")),
            server_names=_csv(served.get("ROUTER_SERVER_NAMES", "")),
            trusted_proxies=_proxies(served.get("ROUTER_TRUSTED_PROXIES", "")),
            ua_tables_at_startup=_ua_tables(served.get("ROUTER_UA_TABLES", "")),
            drain_seconds=_seconds("ROUTER_DRAIN_SECONDS", served.get("ROUTER_DRAIN_SECONDS", ""),
                                   DEFAULT_DRAIN_SECONDS, 0, 600),
            keepalive_seconds=_seconds("ROUTER_KEEPALIVE_SECONDS", served.get("ROUTER_KEEPALIVE_SECONDS", ""),
                                       DEFAULT_KEEPALIVE_SECONDS, 1, 600),
            shutdown_seconds=_seconds("ROUTER_SHUTDOWN_SECONDS", served.get("ROUTER_SHUTDOWN_SECONDS", ""),
                                      DEFAULT_SHUTDOWN_SECONDS, 1, 600),
            metrics_from=_metrics_from(served.get("ROUTER_METRICS_FROM", "")),
            metrics_dir=served.get("ROUTER_METRICS_DIR", "").strip(),
            metrics_port=_integer("ROUTER_METRICS_PORT", served.get("ROUTER_METRICS_PORT", ""), 0, 1, 65535, unit=""),
            redis_url=check_redis_url(served.get("ROUTER_REDIS_URL", "")),
            redis_timeout_seconds=_integer("ROUTER_REDIS_TIMEOUT_MS", served.get("ROUTER_REDIS_TIMEOUT_MS", ""),
                                           DEFAULT_REDIS_TIMEOUT_MS, 1, 1000) / 1000,
            limit_per_address=parse_limit("ROUTER_LIMIT_PER_ADDRESS", served.get("ROUTER_LIMIT_PER_ADDRESS", "")),
            limit_per_ad_link=parse_limit("ROUTER_LIMIT_PER_AD_LINK", served.get("ROUTER_LIMIT_PER_AD_LINK", "")),
            limit_ipv6_prefix=_integer("ROUTER_LIMIT_IPV6_PREFIX", served.get("ROUTER_LIMIT_IPV6_PREFIX", ""),
                                       DEFAULT_IPV6_PREFIX, 32, 128, unit="bits"),
            limit_beacons_per_address=_beacon_limit("ROUTER_LIMIT_BEACONS_PER_ADDRESS", served,
                                                    DEFAULT_BEACONS_PER_ADDRESS),
            limit_beacons_per_visitor=_beacon_limit("ROUTER_LIMIT_BEACONS_PER_VISITOR", served,
                                                    DEFAULT_BEACONS_PER_VISITOR),
            # Every command reads the database from the same setting: serve, tokens, links, db.
            database_url=check_database_url(env.get("ROUTER_DATABASE_URL", "")) or default_database_url(env),
            database_upgrade=_choice("ROUTER_DATABASE_UPGRADE", served.get("ROUTER_DATABASE_UPGRADE", ""),
                                     DATABASE_UPGRADES),
            public_url=check_public_url(env.get("ROUTER_PUBLIC_URL", "")) or DEFAULT_PUBLIC_URL,
            links_kept=_integer("ROUTER_LINKS_KEPT", served.get("ROUTER_LINKS_KEPT", ""), DEFAULT_LINKS_KEPT,
                                100, 10_000_000, unit="links"),
        )
