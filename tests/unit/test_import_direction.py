"""The apps depend on each other in one direction (docs/architecture.md): events
imports none of chat, blog and notifications; notifications none of chat and
blog; chat and blog not each other. Every .py file of the apps counts, migrations
included: an `import`, an `importlib.import_module("...")` of a constant, and a
migration's `dependencies` on another app's migration are each an edge. The
files are parsed with `ast`, never imported.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("events", "notifications", "blog", "chat")
FORBIDDEN = {
    "events": {"chat", "blog", "notifications"},
    "notifications": {"chat", "blog"},
    "blog": {"chat"},
    "chat": {"blog"},
}
# Known edges against the direction, each with its reason.
ALLOWED = {
    # The notifications app adopts the table chat migration 0006 hands over (a
    # state-only move, SeparateDatabaseAndState): its first migration must run
    # after that one. A migration-graph edge only; no chat code is imported.
    ("notifications/migrations/0001_initial.py", "chat"),
}


def _constant(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _targets(tree: ast.Module) -> Iterator[str]:
    """Every module or app label the file depends on."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            module = _constant(node.args[0])
            if name == "import_module" and module is not None:
                yield module
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "dependencies" for t in node.targets):
            # A migration's dependencies: [("app_label", "migration"), ...].
            for element in getattr(node.value, "elts", []):
                label = _constant(element.elts[0]) if isinstance(element, ast.Tuple) and element.elts else None
                if label is not None:
                    yield label


def _edges(app: str) -> Iterator[tuple[str, str]]:
    """(file relative to the repository, app it depends on) for every edge out of `app`."""
    for path in sorted((ROOT / app).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target in _targets(tree):
            top = target.split(".")[0]
            if top in APPS and top != app:
                yield path.relative_to(ROOT).as_posix(), top


@pytest.mark.parametrize("app", APPS)
def test_an_app_depends_only_in_the_one_direction(app):
    wrong = sorted({(file, target) for file, target in _edges(app) if target in FORBIDDEN[app]} - ALLOWED)
    assert wrong == [], f"{app} must not depend on {sorted(FORBIDDEN[app])}"


def test_every_allowed_exception_is_still_needed():
    """An exception nobody needs any more is removed, so that the list stays honest."""
    edges = {edge for app in APPS for edge in _edges(app)}
    assert ALLOWED <= edges


def test_the_parse_sees_imports_migration_dependencies_and_import_module():
    """The checker itself: each kind of edge is found."""
    source = """
import chat.models
from blog import services
from events.schemas import upcast
x = importlib.import_module("notifications.outbox")
dependencies = [("chat", "0001_initial"), migrations.swappable_dependency(settings.AUTH_USER_MODEL)]
"""
    assert sorted(_targets(ast.parse(source))) == [
        "blog.services",
        "chat",
        "chat.models",
        "events.schemas.upcast",
        "notifications.outbox",
    ]


def test_the_config_modules_the_apps_import_import_no_app():
    """config is the project's wiring (settings, URLs, ASGI, Celery), which names
    the apps, and a few shared helpers the apps use (metrics, logs, parameters):
    those helpers stay leaves, so no app reaches another through config."""
    used = {
        target.split(".")[1]
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        for target in _targets(ast.parse(path.read_text(encoding="utf-8")))
        if target.startswith("config.")
    }
    assert used, "the apps import config's helpers (or this test reads nothing)"
    for module in sorted(used):
        tree = ast.parse((ROOT / "config" / f"{module}.py").read_text(encoding="utf-8"))
        assert {t.split(".")[0] for t in _targets(tree)} & set(APPS) == set(), f"config/{module}.py"
