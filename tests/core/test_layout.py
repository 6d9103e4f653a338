"""The layout the README's "Where things are" describes stays true: each app imports only the apps below it, and no
module grows past what a reader can hold (split it by sub-domain first)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "digitalriver", "catalog", "commerce", "fulfillment", "desk", "operations", "sandbox", "config")
# Which of our packages each one may import. `config` wires everything; `desk` and `operations` read
# the domain; the sandbox is a separate implementation of DR's contract and imports none of them.
MAY_IMPORT = {
    "core": set(),
    "digitalriver": {"core"},
    "catalog": {"core", "digitalriver"},
    "commerce": {"core", "digitalriver", "catalog"},
    "fulfillment": {"core", "digitalriver", "catalog", "commerce"},
    "desk": {"core", "digitalriver", "catalog", "commerce", "fulfillment"},
    "operations": {"core", "digitalriver", "catalog", "commerce", "fulfillment"},
    "sandbox": set(),
    "config": set(APPS),
}
# The development tooling the sandbox owns plays our side too: the demo creates and pushes SKUs and
# waits for our orders, and `serve` runs our periodic sweeps beside the sandbox's delivery loop.
TOOLING = {
    "sandbox/demo.py": {"core", "catalog", "commerce", "fulfillment"},
    "sandbox/demo_reversals.py": {"commerce", "fulfillment"},
    "sandbox/management/commands/serve.py": {"core"},
}
MOST_LINES = 600


def modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def our_imports(path: Path) -> set[str]:
    """The top-level packages of ours that a module imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(APPS)


@pytest.mark.parametrize("app", APPS)
def test_each_app_imports_only_the_apps_below_it(app):
    breaches = []
    for path in modules(app):
        relative = str(path.relative_to(ROOT))
        allowed = MAY_IMPORT[app] | TOOLING.get(relative, set()) | {app}
        wrong = our_imports(path) - allowed
        if wrong:
            breaches.append(f"{relative} imports {', '.join(sorted(wrong))}")
    assert not breaches, "; ".join(breaches)


def test_the_checker_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from desk.selectors import order_page\n    import catalog.models\n")
    assert our_imports(module) == {"desk", "catalog"}


@pytest.mark.parametrize("app", APPS)
def test_no_module_is_longer_than_a_reader_can_hold(app):
    long = [
        f"{path.relative_to(ROOT)} ({count} lines)"
        for path in modules(app)
        if (count := len(path.read_text().splitlines())) > MOST_LINES
    ]
    assert not long, ", ".join(long)
