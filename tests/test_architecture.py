"""The structure the style guide promises, checked by reading the source with ``ast``:
the engine core is plain Python, django-q2 is reached through one module, and taskapp never
depends on the dashboard."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("path", sources("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_imports_nothing_of_django(path):
    bad = {m for m in imported_modules(path)
           if _top(m) in {"django", "django_q", "rest_framework", "channels", "taskapp",
                          "dashboard"}}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_dispatch_and_the_qcluster_command_import_django_q():
    users = {
        str(path.relative_to(ROOT))
        for folder in ("engine", "taskapp", "dashboard", "async_states")
        for path in sources(folder)
        if any(_top(m) == "django_q" for m in imported_modules(path))
        and "migrations" not in path.parts
    }
    allowed = {"taskapp/dispatch.py", "taskapp/management/commands/qcluster.py"}
    assert users <= allowed, sorted(users - allowed)


def test_taskapp_never_imports_the_dashboard():
    for path in sources("taskapp"):
        assert not any(_top(m) == "dashboard" for m in imported_modules(path)), path
