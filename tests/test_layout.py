"""The shape of the package holds: each third-party library behind its one module, no import
cycle between delivery backends, and no long module without its reason written at its top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "curator"
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports at run time, at any depth (lazy imports inside functions
    too); imports for type checking only do not count."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize(
    ("library", "owners"),
    [
        ("sqlite3", {"store"}),
        ("typer", {"cli"}),
        ("jinja2", {"render"}),
        ("feedparser", {"parse"}),
        ("httpx", {"fetch", "postmark"}),
    ],
)
def test_each_library_is_imported_by_its_own_module_only(library: str, owners: set[str]) -> None:
    """Only the module named for a library's job imports it."""
    users = {
        path.stem
        for path in MODULES
        if any(name == library or name.startswith(f"{library}.") for name in _imports(path))
    }
    assert users == owners


def test_no_delivery_backend_imports_another() -> None:
    """deliver and postmark meet only in the sender seam; the wiring picks one."""
    assert "curator.postmark" not in _imports(PACKAGE / "deliver.py")
    assert "curator.deliver" not in _imports(PACKAGE / "postmark.py")
    assert "curator.sender" in _imports(PACKAGE / "postmark.py")


def test_the_send_plan_is_pure() -> None:
    """plan.py reads no clock, store, network or disk: it imports only values."""
    # curator.normalize: pure functions only (which mailbox an address's spelling names).
    allowed = {
        "__future__",
        "collections.abc",
        "dataclasses",
        "typing",
        "curator.models",
        "curator.normalize",
    }
    assert _imports(PACKAGE / "plan.py") <= allowed


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_long_module_says_why_at_its_top(path: Path) -> None:
    """A module over 450 lines carries the reason in its docstring."""
    text = path.read_text(encoding="utf-8")
    if len(text.splitlines()) > 450:
        docstring = ast.get_docstring(ast.parse(text)) or ""
        assert "Longer than the ~450 lines" in docstring, path.name
