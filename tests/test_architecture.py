"""The three wings, read from the code: every import in `router/` (ast, not text search) runs downwards.

    router.cli, router.__main__        top: may import every wing
    router.policy                      the policy owners' tools: may import serve and decision
    router.serve                       the HTTP face and what runs beside it: may import decision
    router.decision                    the click decision: pure, imports no other wing

Imports inside functions count as much as those at the top of a module: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "router"

# Lower runs first: a module may import its own wing or a lower one, never a higher one.
LAYERS = {"router.decision": 0, "router.serve": 1, "router.policy": 2, "router": 3}
TOP_LEVEL_MODULES = {"router", "router.cli", "router.link_commands", "router.__main__"}  # the command line

# The decision is pure: no web framework, no server, no network, no templates, no subprocesses.
NOT_IN_DECISION = ("starlette", "uvicorn", "httpx", "httpcore", "jinja2", "socket", "ssl", "asyncio",
                   "subprocess", "http", "urllib.request")
# Every outbound connection goes through one module (SECURITY.md: SSRF).
NETWORK = ("httpx", "httpcore", "socket", "ssl", "urllib.request", "http.client", "requests", "aiohttp", "redis",
           "sqlalchemy", "psycopg", "alembic")
NETWORK_MODULE = "router.serve.upstream"
# The one other way out: the fleet's shared store (Valkey/Redis), through its client only.
STORE_MODULE, STORE_CLIENT = "router.serve.shared", "redis"
# The links' database (SQLite or PostgreSQL), through SQLAlchemy and its migrations only.
DATABASE_MODULE, DATABASE_CLIENTS = "router.serve.link_store", ("sqlalchemy", "psycopg", "alembic")
DATABASE_MODULE_MIGRATIONS = "router.serve.migrations."  # its schema's steps, run by it (Alembic)
# An embedded database is not a connection: the readout opens DuckDB in memory (`duckdb.connect()`), in the
# policy wing, never in a server. (It reads object-storage URLs only when the operator names one.)
# The links' database module connects to its database (SQLAlchemy's `engine.connect()`), as it is there to.
EMBEDDED_DATABASE_CALLS = ("router/policy/report.py", "router/serve/link_store.py")
# Listening is not connecting: `serve --workers N` binds each worker's own listening socket.
LISTENING_MODULE = "router.serve.workers"
# YAML that people write (rule files, case files) is read by one reader; pages also load their shipped words.
YAML_READERS = ("router.decision.yaml_reader", "router.serve.pages")
# Calls that open a socket through a library imported for something else (asyncio, the event loop).
CONNECTING_CALLS = ("open_connection", "create_connection", "open_unix_connection", "create_datagram_endpoint",
                    "create_unix_connection", "sock_connect", "connect", "connect_ex")


@dataclass(frozen=True)
class Arrow:
    source: str  # importing module, dotted
    target: str  # imported module (or package), dotted
    line: int

    def __str__(self) -> str:
        return f"{self.source.replace('.', '/')}.py:{self.line}: imports {self.target}"


def module_name(package: Path, path: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(package, path): path for path in sorted(package.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> Iterator[Arrow]:
    """Every module `path` imports, anywhere in it; `from pkg import mod` names the module when it is one."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Arrow(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Arrow(name, candidate if candidate in known else base, node.lineno)


def connecting_calls(name: str, path: Path) -> Iterator[str]:
    """`asyncio.open_connection(…)`, `loop.create_connection(…)` and the like, as file:line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in CONNECTING_CALLS:
                yield f"{name.replace('.', '/')}.py:{node.lineno}: calls {called}"


def wing(module: str) -> str:
    for prefix in ("router.decision", "router.serve", "router.policy"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return "router"


def inside(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def upward_arrows(arrows: list[Arrow]) -> list[str]:
    return [f"{arrow}, which runs up from {wing(arrow.source)} to {wing(arrow.target)}"
            for arrow in arrows
            if arrow.target.split(".")[0] == "router" and LAYERS[wing(arrow.target)] > LAYERS[wing(arrow.source)]]


def cycles(arrows: list[Arrow], known: set[str]) -> list[list[str]]:
    """Each import cycle between the package's modules once, as the modules in it (Tarjan's components)."""
    graph: dict[str, set[str]] = {module: set() for module in known}
    for arrow in arrows:
        if arrow.target in known and arrow.target != arrow.source:
            graph[arrow.source].add(arrow.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def loose_modules(known: set[str]) -> list[str]:
    return sorted(module for module in known if wing(module) == "router" and module not in TOP_LEVEL_MODULES)


def forbidden(arrows: list[Arrow], who: tuple[str, ...], what: tuple[str, ...]) -> list[str]:
    return [str(arrow) for arrow in arrows if inside(arrow.source, who) and inside(arrow.target, what)]


def read_package(package: Path) -> tuple[set[str], list[Arrow]]:
    found = modules(package)
    known = set(found)
    return known, [arrow for name, path in found.items() for arrow in imports(name, path, known)]


# --- the real package ------------------------------------------------------------------------------------

KNOWN, ARROWS = read_package(PACKAGE)


def test_every_module_lives_in_a_wing() -> None:
    """Only the command line sits at the top: every other module joins the wing whose users it serves."""
    assert loose_modules(KNOWN) == []
    for wing_name in ("router.decision", "router.serve", "router.policy"):
        assert wing_name in KNOWN, f"{wing_name} has no __init__.py"


def test_arrows_only_run_down() -> None:
    """cli → policy → serve → decision, and policy → decision; nothing imports a wing above its own."""
    assert upward_arrows(ARROWS) == []


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or round a longer loop."""
    assert cycles(ARROWS, KNOWN) == []


def test_the_decision_is_pure() -> None:
    """No web framework, server, network, template or subprocess library in router/decision."""
    assert forbidden(ARROWS, ("router.decision",), NOT_IN_DECISION) == []


def test_only_upstream_opens_connections() -> None:
    """No module but router/serve/upstream.py imports an HTTP client or socket library, and it does; the
    exceptions: the socket module in router/serve/workers.py, which only listens (and never connects: no
    module but upstream calls anything that connects), the Redis client in router/serve/shared.py, the
    fleet's store, and SQLAlchemy in router/serve/link_store.py, the links' database."""
    elsewhere = [str(arrow) for arrow in ARROWS if arrow.source != NETWORK_MODULE and inside(arrow.target, NETWORK)
                 and not (arrow.source == LISTENING_MODULE and arrow.target == "socket")
                 and not (arrow.source == STORE_MODULE and inside(arrow.target, (STORE_CLIENT,)))
                 and not ((arrow.source == DATABASE_MODULE or arrow.source.startswith(DATABASE_MODULE_MIGRATIONS))
                          and inside(arrow.target, DATABASE_CLIENTS))]
    assert elsewhere == []
    assert forbidden(ARROWS, (NETWORK_MODULE,), ("httpx",)) != []
    calls = [call for name, path in modules(PACKAGE).items() if name != NETWORK_MODULE
             for call in connecting_calls(name, path) if not call.startswith(EMBEDDED_DATABASE_CALLS)]
    assert calls == []
    assert all("duckdb" not in str(arrow.target) or arrow.source == "router.policy.report" for arrow in ARROWS)


def test_one_yaml_reader() -> None:
    """Rule and case files go through router.decision.yaml_reader; other modules only name its node types."""
    parsers = [str(arrow) for arrow in ARROWS if arrow.source not in YAML_READERS
               and inside(arrow.target, ("yaml",)) and arrow.target != "yaml.nodes"]
    assert parsers == []


def test_each_wing_says_what_it_holds() -> None:
    """Each wing's __init__.py has a docstring naming what it may import."""
    for wing_name in ("decision", "serve", "policy"):
        doc = ast.get_docstring(ast.parse((PACKAGE / wing_name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc.lower(), f"router/{wing_name}/__init__.py needs a docstring"


# --- the checks can fail ---------------------------------------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> tuple[set[str], list[Arrow]]:
    root = tmp_path / "router"
    for relative, text in {"__init__.py": "", "decision/__init__.py": "", "serve/__init__.py": "",
                           "policy/__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return read_package(root)


def test_an_arrow_up_is_caught(tmp_path: Path) -> None:
    """A decision module importing the server's settings (even lazily, inside a function) fails."""
    _, arrows = _package(tmp_path, {
        "serve/config.py": "X = 1\n",
        "decision/click.py": "def f():\n    from router.serve.config import X\n    return X\n",
    })
    assert upward_arrows(arrows) == [
        "router/decision/click.py:2: imports router.serve.config, which runs up from router.decision to router.serve"
    ]


def test_arrows_down_pass(tmp_path: Path) -> None:
    """policy → serve → decision, policy → decision and relative imports within a wing are fine."""
    known, arrows = _package(tmp_path, {
        "decision/types.py": "",
        "decision/rules.py": "from . import types\n",
        "serve/web.py": "from router.decision import rules\n",
        "policy/lint.py": "from router.serve import web\nfrom router.decision.types import *\n",
    })
    assert upward_arrows(arrows) == []
    assert cycles(arrows, known) == []
    assert Arrow("router.decision.rules", "router.decision.types", 1) in arrows


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    """Two serve modules importing each other (as reload and remote once did) are reported as one cycle."""
    known, arrows = _package(tmp_path, {
        "serve/reload.py": "def source():\n    from router.serve.remote import Bundle\n    return Bundle\n",
        "serve/remote.py": "from router.serve.reload import source\nclass Bundle: ...\n",
    })
    assert upward_arrows(arrows) == []
    assert cycles(arrows, known) == [["router.serve.reload", "router.serve.remote"]]


@pytest.mark.parametrize(("source", "expected"), [
    ("import httpx\n", ["router/decision/links.py:1: imports httpx"]),
    ("from starlette.responses import Response\n", ["router/decision/links.py:1: imports starlette.responses"]),
    ("import hashlib\nimport idna\n", []),
])
def test_the_decision_purity_check(tmp_path: Path, source: str, expected: list[str]) -> None:
    """Network and web imports in the decision are named with file:line; parsing libraries are not."""
    _, arrows = _package(tmp_path, {"decision/links.py": source})
    assert forbidden(arrows, ("router.decision",), NOT_IN_DECISION) == expected


def test_a_connection_opened_elsewhere_is_caught(tmp_path: Path) -> None:
    """A socket opened through asyncio, which every server module may import, is still found."""
    root = tmp_path / "router" / "serve"
    root.mkdir(parents=True)
    (root / "metrics.py").write_text("import asyncio\nasync def push():\n    await asyncio.open_connection('h', 1)\n")
    assert list(connecting_calls("router.serve.metrics", root / "metrics.py")) == [
        "router/serve/metrics.py:3: calls open_connection"
    ]


def test_a_loose_module_is_caught(tmp_path: Path) -> None:
    """A new module dropped beside cli.py belongs in a wing."""
    known, _ = _package(tmp_path, {"cli.py": "", "metrics.py": ""})
    assert loose_modules(known) == ["router.metrics"]


def test_every_file_the_project_points_to_is_in_the_repository() -> None:
    """Comments, docs and rule files name docs/… and other files by path: each one exists (nothing points
    outside the repository)."""
    root = Path(__file__).resolve().parent.parent
    texts = [*root.glob("router/**/*.py"), *root.glob("rules/*.yaml"), *root.glob("docs/*.md"), root / "README.md",
             root / "SECURITY.md"]
    pointed = set()
    for path in texts:
        for found in re.findall(r"\b(docs/[\w./-]+\.(?:md|png)|[\w-]+\.md)\b", path.read_text(encoding="utf-8")):
            pointed.add(found)
    places = [root, *(root / folder for folder in (
        "docs", "router", "rules", "tests", "tests/data", "deploy", "benchmarks"))]
    missing = [name for name in sorted(pointed) if not any((place / name).exists() for place in places)]
    assert missing == [] and "docs/wechat-and-taobao.md" in pointed
