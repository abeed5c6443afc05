"""`python -m router` / `adlink-router`: serve, sign, explain, report, rules, and the short links' db, tokens, links.

`rules …` are the policy owners' commands (router.policy); `db`, `tokens` and `links` manage the short
links' database, API tokens and links (router.link_commands).

Every command loads rules and settings through the same functions the server
uses, so what `explain` prints is what the server does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import errno
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn
from urllib.parse import quote, urlencode

from router import link_commands
from router.decision.click import BadClick, read_click
from router.decision.decide import explain
from router.decision.links import LinkError, parse_link
from router.decision.named_clients import UnknownClientError, user_agent
from router.decision.rules import RuleSet, RuleSetError
from router.decision.signing import sign
from router.decision.types import Channel
from router.policy import casebook, lint, matrix, report_render, ruleset_diff, schema
from router.policy.explain_json import explain_click
from router.policy.replay import UnreadableLine, parse_time, read_clicks
from router.serve.config import Settings, check_serving_keys, check_signing_keys
from router.serve.reload import rules_source
from router.serve.sources import RulesSource, RulesUnavailable

# Each `rules …` command lives in its own module, which registers its parser with `register(subparsers)`
# and runs as `run(args, out) -> exit status`.
RULES_COMMANDS = (lint, casebook, ruleset_diff, matrix, schema)


class UsageError(Exception):
    """A command-line mistake: printed as one sentence, exit status 2."""


def _settings(rules_dir: str | None, serving: bool = True) -> Settings:
    try:
        return Settings.from_env(rules_dir=rules_dir, serving=serving)
    except ValueError as err:  # SigningKeyError and the other settings mistakes
        raise UsageError(str(err)) from None


def _rules(settings: Settings, source: RulesSource | None = None,
           report: Callable[[str], object] | None = None) -> RuleSet:
    """The rules as the server loads them, from a directory or a bundle URL; UsageError when they can't be,
    after reporting each problem (to stderr, or to `report`)."""
    try:
        return (source or rules_source(settings)).load()
    except RulesUnavailable as err:
        raise UsageError(f"{err}; nothing was loaded") from None
    except RuleSetError as err:
        for problem in err.problems:
            if report is None:
                print(problem, file=sys.stderr)
            else:
                report(str(problem))
        count = len(err.problems)
        raise UsageError(f"rules rejected: {count} problem{'s' if count != 1 else ''}; nothing was loaded") from None


def _parse_at(text: object) -> datetime:
    try:
        return parse_time(text)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _read_as_warning(ua: str) -> str | None:
    """A warning for stderr when the user agent explain was given is missing or says no app or browser a
    person taps in (a bot, or no OS): the answer is then about a client the person likely did not mean."""
    from router.decision.clients import parse_client
    from router.decision.types import OS

    if not ua:
        return ("warning: no --ua or --client: the click is read as a bot (an empty User-Agent). Give the real "
                "User-Agent with --ua, or a named client with --client NAME (e.g. wechat_ios; `rules matrix` "
                "lists them).")
    client = parse_client(ua)
    if client.bot or client.os is OS.OTHER:
        kind = "a bot" if client.bot else f"{client.app!s} on an unknown OS"
        return (f"warning: the User-Agent {ua[:60]!r} is read as {kind}: no app or browser a person taps in. "
                "If you meant a phone app, give its full User-Agent, or --client NAME (e.g. wechat_ios; "
                "`rules matrix` lists them).")
    return None


def _batch(lines: Iterable[str], settings: Settings, rules: RuleSet) -> Iterator[dict[str, Any]]:
    """One explanation per click line, each /ad click as the server judged its signature (its `claim`); the
    lines that could not be replayed faithfully, and the old ones checked again here, counted on stderr."""
    from router.policy.explain_json import explain_recorded

    not_replayed = reverified = 0
    for click in read_clicks(lines):
        if isinstance(click, UnreadableLine):
            yield {"line": click.line, "error": click.error}
            continue
        result = explain_recorded(click, settings, rules)
        not_replayed += "not_replayed" in result
        reverified += "reverified" in result
        yield result
    if not_replayed:
        print(f"warning: {not_replayed} click line{'s' if not_replayed != 1 else ''} could not be replayed as the "
              "server decided them (see their not_replayed field)", file=sys.stderr)
    if reverified:
        print(f"note: {reverified} /ad click line{'s' if reverified != 1 else ''} without a claim: the signature "
              "was checked here again, with these keys and without the server's replay check", file=sys.stderr)


def _click_request(args: argparse.Namespace, settings: Settings) -> str:
    """The request to explain: given as is, or built from --link/--channel (--channel ad signs it)."""
    if args.request and args.link:
        raise UsageError("give either a request ('/go?url=…') or --link, not both")
    if args.request:
        return str(args.request)
    if not args.link:
        raise UsageError("nothing to explain: give a request such as '/go?url=…' or --link URL")
    if args.channel == Channel.AD.value:
        wanted = {"url": args.link, "src": args.ad_source or "", "adv": args.advertiser or ""}
        fields = sign(wanted, settings.signing_keys)
        return "/ad?" + urlencode(fields, quote_via=quote)
    params = {"url": args.link}
    if args.channel:
        params["ch"] = args.channel
    return "/go?" + urlencode(params, quote_via=quote)


def cmd_explain(args: argparse.Namespace, out: IO[str]) -> int:
    if args.client:
        if args.ua:
            raise UsageError("give either --ua or --client, not both")
        try:
            args.ua = user_agent(args.client)
        except UnknownClientError as err:
            # `<app>` or `<app>_<os>`: one of the app's known user agents, as rule test cases have it.
            from router.decision.known_agents import load_corpus
            from router.policy.casebook import corpus_client

            rules_dir = args.rules if args.rules and "://" not in args.rules else None
            known = corpus_client(load_corpus(Path(rules_dir) if rules_dir else None), args.client)
            if known is None:
                raise UsageError(f"{err}; nor is it an app of the catalogue with known user agents "
                                 "(`<app>` or `<app>_<os>`, e.g. kuaishou_ios)") from None
            args.ua = known
    settings = _settings(args.rules, serving=False)
    rules = _rules(settings)
    if args.batch:
        stream = sys.stdin if args.batch == "-" else open(args.batch, encoding="utf-8")  # noqa: SIM115
        with stream:
            for result in _batch(stream, settings, rules):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
        return 0
    request = _click_request(args, settings)
    warning = _read_as_warning(args.ua)
    if warning:
        print(warning, file=sys.stderr)
    in_rollout = True if args.in_rollout else False if args.out_of_rollout else None
    if args.format == "text":
        out.write(_explain_text(request, args.ua, _parse_at(args.at), settings, rules, args.visitor or "",
                                in_rollout))
        return 0
    result = explain_click(request, args.ua, _parse_at(args.at), settings, rules, args.visitor or "", in_rollout)
    out.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return 0


def _explain_text(request: str, ua: str, at: datetime, settings: Settings, rules: RuleSet, visitor: str,
                  in_rollout: bool | None = None) -> str:
    from router.policy.explain_text import render

    path, _, query = request.partition("?")
    try:
        ctx = read_click(path, query, ua, at=at, settings=settings, visitor=visitor, apps=rules.apps)
    except BadClick as bad:
        return f"→ block ({bad.status}) before any rule: {bad.message}\n"
    if in_rollout is not None:
        ctx = dataclasses.replace(ctx, in_rollout=in_rollout)
    return render(ctx, explain(rules, ctx), rules, ua)


def cmd_sign(args: argparse.Namespace, out: IO[str]) -> int:
    settings = _settings(None, serving=False)
    try:
        parse_link(args.url, settings.allowed_hosts)
    except LinkError as err:
        raise UsageError(f"--url: {err}") from None
    if args.channel and args.channel not in Channel._value2member_map_:
        raise UsageError(f"--channel {args.channel!r} is not one of: {', '.join(c.value for c in Channel)}")
    try:  # the public development key signs only when asked for: its links are anyone's to forge
        check_signing_keys(settings.signing_keys, args.development_key)
    except ValueError as err:
        raise UsageError(str(err)) from None
    expires = ""
    if args.expires:
        moment = _parse_at(args.expires)
        if moment <= datetime.now(UTC):
            raise UsageError(f"--expires {args.expires} is in the past")
        expires = str(int(moment.timestamp()))
    fields = {"url": args.url, "src": args.source, "adv": args.advertiser, "cmp": args.campaign or "",
              "ch": args.channel or "", "exp": expires}
    query = urlencode(sign(fields, settings.signing_keys), quote_via=quote)
    out.write(f"{args.base.rstrip('/') if args.base else ''}/ad?{query}\n")
    kid = settings.signing_keys.signing_kid
    if settings.signing_keys.development:
        print(f"signed with key id {kid}: the PUBLIC development key (a demo only; anyone can sign such links)",
              file=sys.stderr)
    else:
        print(f"signed with key id {kid}", file=sys.stderr)
    return 0


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _serve_defaults(args: argparse.Namespace) -> None:
    """--host, --port and --log-level from ROUTER_HOST, ROUTER_PORT and ROUTER_LOG_LEVEL where not given;
    UsageError naming the variable and what it takes when one is not usable."""
    if args.host is None:
        args.host = os.environ.get("ROUTER_HOST", "").strip() or "127.0.0.1"
    port_given = args.port is not None
    if args.port is None:
        text = os.environ.get("ROUTER_PORT", "").strip() or "8000"
        if not text.isdigit():
            raise UsageError(f"ROUTER_PORT must be a port number from 1 to 65535, got {text[:40]!r}")
        args.port = int(text)
    if not 0 <= args.port < 65536:  # 0: any free port, as the system picks
        given = "--port" if port_given else "ROUTER_PORT"
        raise UsageError(f"{given} must be a port number from 0 (any free one) to 65535, got {args.port}")
    if args.log_level is None:
        level = os.environ.get("ROUTER_LOG_LEVEL", "").strip().lower() or "info"
        if level not in LOG_LEVELS:
            raise UsageError(f"ROUTER_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level[:40]!r}")
        args.log_level = level


def cmd_serve(args: argparse.Namespace, out: IO[str]) -> int:
    from router.serve.logs import configure_logging

    # Every line the server writes is one JSON object (router.serve.logs), its refusals to start included:
    # a bad setting or rule file is a `server` line at level critical (file:line in its message), exit 2.
    try:
        _serve_defaults(args)
    except UsageError as err:
        configure_logging("info")
        logging.getLogger("router.startup").critical("error: %s", err)
        return 2
    configure_logging(args.log_level)
    refusal = logging.getLogger("router.startup")
    try:
        return _serve(args, refusal)
    except UsageError as err:
        refusal.critical("error: %s", err)
        return 2


def _serve(args: argparse.Namespace, refusal: logging.Logger) -> int:
    import uvicorn

    from router.serve.logs import click_stream
    from router.serve.web import create_app

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    settings = _settings(args.rules)
    if not args.reuse_port:  # the parent, or the one process: a worker is started only once these passed
        _check_start(args, settings)
    if settings.metrics_port == args.port:
        raise UsageError(f"ROUTER_METRICS_PORT must differ from the clicks' port ({args.port}); leave it unset to "
                         "serve /metrics on the clicks' port")
    if args.workers == 1 and not args.reuse_port:
        # One process: its counts are all there is. A metrics directory (set for workers, as a ConfigMap
        # may) would only add an earlier process's files to the sum.
        settings = dataclasses.replace(settings, metrics_dir="")
    if not args.reuse_port:  # the parent, or the one process: a busy port is refused before anything starts
        _check_ports_free(args.host, args.port, settings.metrics_port)
    source = rules_source(settings)  # before loading: a change made meanwhile is picked up once serving
    # Refuse to start, naming file:line (or why the bundle could not be fetched), before uvicorn does anything.
    rules = _rules(settings, source, report=refusal.critical)
    if not args.reuse_port:  # the parent, or the one process: the links' schema made or checked, once
        from router.serve.web import LinksSchemaBehind, prepare_links_database

        try:
            prepare_links_database(settings)
        except LinksSchemaBehind as err:
            raise UsageError(str(err)) from None
    if args.workers > 1:
        from router.serve.workers import shared_metrics_dir, supervise

        # Workers are separate processes, each on its own socket (router.serve.workers): they read the same
        # settings from the environment, and each watches the rules; they sum their metrics in a shared
        # directory (router.serve.metrics).
        with contextlib.ExitStack() as stack:
            try:
                directory = stack.enter_context(shared_metrics_dir(settings.metrics_dir))
            except OSError as err:
                raise UsageError(f"serve --workers needs a writable directory for the workers' metrics: {err}; set "
                                 "ROUTER_METRICS_DIR to one (a read-only root needs a volume for it)") from None
            return supervise(args.host, args.port, args.workers, args.log_level,
                             {"ROUTER_RULES_DIR": settings.rules_location, "ROUTER_LOG_LEVEL": args.log_level,
                              "ROUTER_METRICS_DIR": directory},
                             stop_seconds=settings.drain_seconds + settings.shutdown_seconds + 10)
    try:
        clicks_to = click_stream(os.environ.get("ROUTER_CLICK_LOG", ""))
    except ValueError as err:
        raise UsageError(str(err)) from None
    app = create_app(settings, rules, source=source, click_stream=clicks_to)
    # log_config=None: uvicorn keeps the JSON-line handler configure_logging set (router.serve.logs).
    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=False, log_level=args.log_level,
                            log_config=None, **_server_limits(settings))
    from router.serve.drain import DrainingServer

    server = DrainingServer(config, settings.drain_seconds)  # SIGTERM: a drain, then a graceful stop, exit 0
    # Everything loaded so far (parsers, templates, rules) lives as long as the process: kept out of the
    # collector's sight, so that a full collection does not walk it while clicks wait.
    gc.collect()
    gc.freeze()
    if not args.reuse_port and not settings.metrics_port:
        server.run()
        return 0
    from router.serve.workers import listening_socket

    # One of serve --workers N's processes binds its own sockets on the shared addresses (SO_REUSEPORT);
    # one process with a metrics port binds both itself.
    try:
        sockets = [listening_socket(args.host, args.port, reuse_port=args.reuse_port)]
        if settings.metrics_port:
            sockets.append(listening_socket(args.host, settings.metrics_port, reuse_port=args.reuse_port))
    except OSError as err:
        raise UsageError(f"can't listen on {args.host}: {err}") from None
    logging.getLogger("router").info("listening on %s", ", ".join(
        f"http://{args.host}:{sock.getsockname()[1]}" + (" (metrics)" if index else "")
        for index, sock in enumerate(sockets)))
    server.run(sockets=sockets)
    return 0


def _check_start(args: argparse.Namespace, settings: Settings) -> None:
    """What would make the server unsafe or useless is refused before it starts, one sentence each:
    the public development key on an address other machines reach (without --development-key), and a
    shared store that refuses the credentials ROUTER_REDIS_URL gives. A store that does not answer is not
    refused: the server serves, each process on its own, and tries it again (router.serve.shared)."""
    try:
        check_serving_keys(settings.signing_keys, args.host, args.development_key)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if settings.redis_url:
        from router.serve.shared import credentials_refused

        refused = credentials_refused(settings.redis_url)
        if refused:
            raise UsageError(refused)


def _check_ports_free(host: str, *ports: int) -> None:
    from router.serve.workers import check_free

    for port in ports:
        try:
            if port:
                check_free(host, port)
        except OSError as err:
            if err.errno == errno.EACCES:
                hint = ("ports below 1024 need root or CAP_NET_BIND_SERVICE: serve on a higher one (--port 8000) "
                        "behind the load balancer")
            elif err.errno == errno.EADDRINUSE:
                hint = "another process listens there (another router?): stop it, or choose another --port"
            else:
                hint = "check --host: it must be an address of this machine"
            raise UsageError(f"can't listen on {host}:{port}: {err.strerror or err}; {hint}") from None


def _server_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn options: the fast loop and protocol, bounds on what a client can send, whom to believe."""
    from router.serve.protocol import BoundedHttpToolsProtocol

    return {
        "loop": "uvloop",
        # httptools, with the head limits it lacks added: 431 past 16 KB (also while a head is still
        # arriving), 408 for a head that dribbles in (router.serve.protocol).
        "http": BoundedHttpToolsProtocol,
        # X-Forwarded-For is believed only from configured proxies; by default from nobody, so a client
        # can't pick the address its visitor id and logs are based on.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
        "server_header": False,
        "timeout_keep_alive": settings.keepalive_seconds,
        "timeout_graceful_shutdown": settings.shutdown_seconds,
    }


class _Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean …?" for a mistyped option (`serve --prot 9000`)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            known = sorted(_option_strings(self))
            for word in message.split(":", 1)[1].split():
                if word.startswith("-"):
                    close = difflib.get_close_matches(word.partition("=")[0], known, n=1, cutoff=0.6)
                    if close:
                        message += f" (did you mean {close[0]}?)"
                        break
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option of `parser` and of its commands, at any depth."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(option for option in action.option_strings if option.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="adlink-router", description=__doc__.splitlines()[0] if __doc__ else None)
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the HTTP server")
    # Defaults from the environment are read by `serve` when it runs (_serve_defaults), never when the parser
    # is built: a bad ROUTER_PORT must not break `rules check`, and it gets a sentence, not a traceback.
    serve.add_argument("--host", help="address to listen on (default: $ROUTER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: $ROUTER_PORT or 8000)")
    serve.add_argument("--rules", metavar="DIR|URL",
                       help="rules directory, or the https:// URL of a rules bundle "
                       "(default: $ROUTER_RULES_DIR or the shipped rules); reloaded when it changes")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes, each on its own socket so connections spread evenly (Linux)")
    serve.add_argument("--development-key", action="store_true",
                       help="without ROUTER_SIGNING_KEYS, sign and verify with the public development key even on "
                       "an address other machines reach (a demo only; on loopback it is used anyway)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set by --workers N
    serve.add_argument("--log-level", choices=LOG_LEVELS, help="default: $ROUTER_LOG_LEVEL or info")
    serve.set_defaults(run=cmd_serve)

    signer = commands.add_parser("sign", help="print a signed /ad link for an ad platform")
    signer.add_argument("--url", required=True, help="destination Taobao/Tmall link")
    signer.add_argument("--source", required=True, help="ad source, e.g. unidesk")
    signer.add_argument("--advertiser", required=True, help="advertiser id")
    signer.add_argument("--campaign", help="campaign id")
    signer.add_argument("--channel", help="channel to stamp (default: ad)")
    signer.add_argument("--base", help="public base URL of the router, e.g. https://go.example.com")
    signer.add_argument("--expires", metavar="TIME",
                        help="ISO time with timezone after which the link has no ad privileges (signed)")
    signer.add_argument("--development-key", action="store_true",
                        help="without ROUTER_SIGNING_KEYS, sign with the public development key (a demo only)")
    signer.set_defaults(run=cmd_sign)

    expl = commands.add_parser("explain", help="show how one click (or a file of clicks) is decided")
    expl.add_argument("request", nargs="?", help="path and query as it reached the router, e.g. '/go?url=…'")
    expl.add_argument("--ua", default="", help="User-Agent of the click (default: empty, which reads as a bot: "
                      "explain warns)")
    expl.add_argument("--client", help="instead of --ua: a named client, e.g. wechat_ios (see `rules matrix`)")
    expl.add_argument("--at", help="time of the click, ISO 8601 with timezone (default: now)")
    expl.add_argument("--rules", metavar="DIR|URL",
                      help="rules directory or bundle URL (default: $ROUTER_RULES_DIR or the shipped rules)")
    expl.add_argument("--visitor", help="visitor id, as logged by the server (rollouts depend on it)")
    arm = expl.add_mutually_exclusive_group()
    arm.add_argument("--in-rollout", action="store_true",
                     help="what-if: the visitor is inside every rollout (as a case file's in_rollout: true)")
    arm.add_argument("--out-of-rollout", action="store_true",
                     help="what-if: the visitor is outside every partial rollout (in_rollout: false)")
    expl.add_argument("--link", help="instead of a request: the destination link")
    expl.add_argument("--channel", choices=[c.value for c in Channel], help="with --link: the channel")
    expl.add_argument("--ad-source", help="with --link --channel ad: the ad source (the link is signed)")
    expl.add_argument("--advertiser", help="with --link --channel ad: the advertiser")
    expl.add_argument("--format", choices=["json", "text"], default="json",
                      help="json (default): one object; text: each rule tried, ✓/✗ per condition")
    expl.add_argument("--batch", metavar="FILE", help="JSON lines {request, ua, at?, visitor?}; '-' for stdin")
    expl.set_defaults(run=cmd_explain)

    report_render.register(commands)
    # The short links' database, API tokens and links (router.link_commands: each runs as `run(args, out)`).
    link_commands.register(commands)

    docs = commands.add_parser("docs", help="print a reference page of the documentation site, generated")
    docs.add_argument("page", choices=DOC_PAGES, help="cli (this command line), settings, metrics, or api (/api/)")
    docs.set_defaults(run=cmd_docs)

    rules = commands.add_parser("rules", help="check, test, compare and look at rule sets")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    for module in RULES_COMMANDS:
        module.register(rules_commands)
    # The usage line names every command, and must do so on one line of an 80-column terminal: argparse's own,
    # "[-h] {…} ...", is one character too long for all eight, so -h is left to the options listed below it.
    parser.usage = f"%(prog)s {{{','.join(commands.choices)}}} ..."
    return parser


DOC_PAGES = ("cli", "settings", "metrics", "api")
_HELP_COLUMNS = 100  # the width the command line's page is written at, whatever the terminal's


def cmd_docs(args: argparse.Namespace, out: IO[str]) -> int:
    """A generated page of the documentation site (docs/reference-<page>.md holds the committed copy)."""
    from router.policy import references

    pages: dict[str, Callable[[], str]] = {"cli": cli_page, "settings": references.settings_page,
                                           "metrics": references.metrics_page, "api": references.api_page}
    out.write(pages[args.page]())
    return 0


def cli_page() -> str:
    """The command line's reference: every command's help, as `--help` prints it, at a fixed width."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(_HELP_COLUMNS)
    try:
        parser = build_parser()
        sections = [references_header("cli", "router/cli.py and the commands' modules (their argument parsers)"),
                    "# The command line\n",
                    "`adlink-router COMMAND …` (or `python -m router COMMAND …`). Every command's `--help`, as it "
                    "prints it.\n"]
        for name, command in _commands(parser):
            sections += [f"## `{name}`\n", "```text", command.format_help().rstrip("\n"), "```\n"]
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(sections)


def references_header(page: str, source: str) -> str:
    from router.policy.references import GENERATED

    return GENERATED.format(page=page, source=source).rstrip("\n") + "\n"


def _commands(parser: argparse.ArgumentParser, prefix: str = "adlink-router") -> Iterator[
        tuple[str, argparse.ArgumentParser]]:
    """Every command and subcommand with its parser, depth first, in the order they were added."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args, out or sys.stdout))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `explain … | head`: the reader has what it wanted
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
