"""The package's modules form no import cycle (function-level imports included) and import each other at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import higress_local

PACKAGE_DIR = Path(higress_local.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> package modules it imports anywhere in its body (not under TYPE_CHECKING)."""
    modules = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    # A package's __init__ importing its own submodules is how packages work; only count the rest.
    def relevant(a: str, b: str) -> bool:
        return not b.startswith(a + ".")

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if not relevant(node, nxt):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def top_level(name: str) -> str:
    """higress_local.cli.main -> higress_local.cli: the folder (or top-level module) a module belongs to."""
    return ".".join(name.split(".")[:2])


def test_the_packages_form_no_cycle():
    """Folders by concern stack on each other: no import runs back up from a lower one to a higher one."""
    graph: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        here = top_level(name)
        graph.setdefault(here, set()).update(top_level(t) for t in targets if top_level(t) not in (here, "higress_local"))
    cycle = find_cycle(graph)
    assert cycle is None, "packages in a cycle: " + " -> ".join(cycle or [])


def test_the_cli_reaches_the_runtime_only_through_the_stack():
    reaching = {f"{name} -> {target}" for name, targets in import_graph().items() if name.startswith("higress_local.cli.")
                for target in targets if target == "higress_local.runtime" or target.startswith("higress_local.runtime.")}
    assert not reaching, sorted(reaching)


# Function-level imports of hlocal's own modules that stay, each with its reason. Everything else
# imports at the top: the commands load lazily through the group's table (cli/group.py) instead.
LOCAL_IMPORTS_ALLOWED = {
    "higress_local.entry": "the console script imports only built-in modules until it knows the agent "
                           "does not serve the command (tests/unit/test_entry.py)",
    "higress_local.testing.pytest_plugin": "every pytest session loads the plugin (pytest11): hlocal itself "
                                           "loads only when a test uses one of its fixtures",
    # One import each (`module: import`): a heavy third-party library only the chosen path needs.
    "higress_local.runtime: from .docker import DockerRuntime": "the Docker SDK, for docker stacks only",
    "higress_local.runtime: from .native import NativeRuntime": "as its sibling: the chosen runtime only",
    "higress_local.runtime.stage: from .tls import ensure_certificate": "cryptography, when gateway.tls is on",
    "higress_local.runtime.dockerplan: from .tls import mounted_certificate": "as stage's: when gateway.tls is on",
}


def function_level_imports(path: Path) -> list[str]:
    """`line: import` for each import of a package module inside a function (TYPE_CHECKING blocks aside)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            own = (isinstance(inner, ast.ImportFrom) and (inner.level or (inner.module or "").startswith("higress_local"))
                   or isinstance(inner, ast.Import) and any(a.name.startswith("higress_local") for a in inner.names))
            if own:
                found.append(f"{inner.lineno}: {ast.unparse(inner)}")
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def test_the_package_imports_its_own_modules_at_the_top():
    local, used = {}, set()
    for path in PACKAGE_DIR.rglob("*.py"):
        name = module_name(path)
        for line in function_level_imports(path):
            allowed = {name, f"{name}: {line.split(': ', 1)[1]}"} & LOCAL_IMPORTS_ALLOWED.keys()
            used |= allowed
            if not allowed:
                local.setdefault(name, []).append(line)
    assert not local, f"move these imports to the top of their module: {local}"
    assert used == LOCAL_IMPORTS_ALLOWED.keys(), f"allowed but not there any more: {LOCAL_IMPORTS_ALLOWED.keys() - used}"


def test_the_checker_finds_a_function_level_import(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("from . import top\n\ndef f():\n    import json\n    from .x import y\n    return y\n")
    assert function_level_imports(module) == ["5: from .x import y"]
