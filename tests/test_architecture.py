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


# ---------------------------------------------------------------------------- one writer

# Calls that write rows through Django's ORM. ``update`` counts only on a queryset (its
# receiver goes through ``objects`` or a ``filter``), so ``dict.update`` is not mistaken.
_WRITES = {"create", "get_or_create", "update_or_create", "bulk_create", "bulk_update",
           "delete", "save", "save_model", "delete_model", "delete_queryset"}
# django-q2's own Schedule rows, written by the one module that talks to django-q2.
_NOT_OURS = {"taskapp/dispatch.py"}


def _writes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        queryset = "objects" in receiver or "filter(" in receiver or "_guarded" in receiver
        if node.func.attr in _WRITES or (node.func.attr == "update" and queryset):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}")
    return found


def _outside_services() -> list[Path]:
    return [path for folder in ("taskapp", "dashboard", "async_states")
            for path in sources(folder)
            if "migrations" not in path.parts and "services" not in path.parts
            and str(path.relative_to(ROOT)) not in _NOT_OURS]


def test_only_services_write_rows():
    writes = [write for path in _outside_services() for write in _writes(path)]
    assert not writes, "rows are written only by taskapp/services: " + "; ".join(writes)


def test_the_write_scan_sees_a_write():
    """The scan above would pass on anything if it could not see a write."""
    services = sources("taskapp/services")
    assert any(_writes(path) for path in services)


def _module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _project_imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, directly or through other project modules."""
    seen: set[str] = set()
    todo = [path]
    while todo:
        for module in imported_modules(todo.pop()):
            found = _module_path(module)
            if found is not None and module not in seen:
                seen.add(module)
                todo.append(found)
    return seen


def test_selectors_import_no_services_even_indirectly():
    pulled = _project_imports(ROOT / "taskapp" / "selectors.py")
    assert not {m for m in pulled if m.startswith("taskapp.services")}, sorted(pulled)


def test_the_store_is_a_service():
    assert not (ROOT / "taskapp" / "store.py").exists(), "the store writes: taskapp/services/"


# ---------------------------------------------------------------------------- plugin seams


def _registered_kinds() -> set[str]:
    from engine import conditions, instructions

    return set(conditions.registered_kinds()) | set(instructions.REGISTRY.kinds())


def kind_names_in(source: str, kinds: set[str]) -> list[tuple[int, str]]:
    """String constants in ``source`` equal to a plugin kind (``"poll"``, ``"set"``), as
    (line, kind). Keys are not names of kinds (``{"message": ...}``, ``error["message"]``)."""
    tree = ast.parse(source)
    keys = {id(key) for node in ast.walk(tree) if isinstance(node, ast.Dict)
            for key in node.keys if key is not None}
    keys |= {id(node.slice) for node in ast.walk(tree) if isinstance(node, ast.Subscript)}
    return sorted(
        (node.lineno, node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and node.value in kinds and id(node) not in keys
    )


def test_the_runner_never_names_a_kind():
    """Conditions and instructions declare what the runner needs (``io``, ``side_effects``,
    ``assigns``); a kind added by a plugin then works without touching the runner."""
    kinds = _registered_kinds()
    found = {str(path.relative_to(ROOT)): hits for path in sources("engine/runner")
             if (hits := kind_names_in(path.read_text(), kinds))}
    assert not found, found


def test_the_kind_scan_sees_a_kind():
    source = (
        'if transition.condition_kind == "poll":\n'
        '    plugin = conditions.plugin_for("poll")\n'
        'error = {"message": "set", "code": "x"}\n'
        'shown = error["message"]\n'
    )
    assert kind_names_in(source, _registered_kinds()) == [(1, "poll"), (2, "poll"), (3, "set")]


def test_broker_listeners_reach_the_database_only_through_services_and_selectors():
    """A listener's message is stored by the events service, the only writer of events, so
    the acknowledgement follows its commit; ``taskapp.listeners`` never touches models."""
    tree = ast.parse((ROOT / "taskapp" / "listeners.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if node.module == "taskapp"}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "models" not in imported and "taskapp.models" not in modules
    assert {"taskapp.services", "taskapp"} <= modules
