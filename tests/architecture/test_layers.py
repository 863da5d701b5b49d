"""The package layers of docs/architecture.md, enforced: every import of a promptpress module (at the
top of a file or inside a function) goes down the layer order or stays inside its own group, the
module graph has no cycle, and imports inside functions are kept for the CLI's command dispatch and
the lazy exports of package ``__init__`` files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {
    "cache": "cache",
    "compressor": "compressor",
    "adapters": "adapters",
    "service": "service",
    "eval": "eval",
}

# lowest first; a module may import its own group and any group of a lower layer
LAYERS: list[tuple[str, ...]] = [
    ("promptpress.cache",),
    ("promptpress.compressor",),
    ("promptpress.compressor.soft", "promptpress.compressor.llamacpp"),
    ("promptpress.compressor.training",),
    ("promptpress.eval",),
    ("promptpress.adapters", "promptpress.service"),
    ("promptpress.service.cli",),
]
GROUPS = [g for layer in LAYERS for g in layer]
LEVEL = {g: i for i, layer in enumerate(LAYERS) for g in layer}
# where an import inside a function is the design: the CLI loads a command's code when it runs
LAZY_ALLOWED = ("promptpress.service.cli",)
# modules that wrap an optional dependency at their top: imported when the feature is asked for
OPTIONAL_WRAPPERS = {"promptpress.cache.redis_backend": "redis (the 'redis' extra)"}


def group_of(module: str) -> str:
    return max((g for g in GROUPS if module == g or module.startswith(g + ".")), key=len)


def module_files() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join(("promptpress", package, *parts))
            out[name.removesuffix(".__init__")] = path
    return out


MODULES = module_files()


def _target(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported promptpress module, line, inside a function) for each import in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lazy_nodes = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
    }
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _target(module, path.name == "__init__.py", node)
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        for name in names:
            if name.startswith("promptpress."):
                while name not in MODULES and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name != module:
                    found.append((name, node.lineno, id(node) in lazy_nodes))
    return found


def test_every_module_is_in_a_group():
    assert "promptpress.compressor.token_classifier" in MODULES  # the walk found the packages
    for module in MODULES:
        assert group_of(module) in GROUPS


def test_imports_follow_the_layer_order():
    wrong = []
    for module in MODULES:
        source = group_of(module)
        for target, line, _ in imports(module):
            dest = group_of(target)
            if dest != source and LEVEL[dest] >= LEVEL[source]:
                wrong.append(f"{module}:{line} imports {target} ({dest} is not below {source})")
    assert not wrong, "\n".join(wrong)


def test_imports_inside_functions_only_where_the_design_says():
    hidden = []
    for module in MODULES:
        if module.startswith(LAZY_ALLOWED):
            continue
        for target, line, lazy in imports(module):
            lazy_export = MODULES[module].name == "__init__.py" and target.startswith(module + ".")
            if lazy and not lazy_export and target not in OPTIONAL_WRAPPERS:
                hidden.append(f"{module}:{line} imports {target} inside a function")
    assert not hidden, "\n".join(hidden)


def test_no_import_cycles():
    graph = {m: sorted({t for t, _, _ in imports(m)}) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # a package __init__ re-exporting its submodules is not a cycle of design
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not cycles, cycles


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("promptpress.compressor.assets", "promptpress.compressor.training.package"),
        ("promptpress.compressor.token_classifier", "promptpress.eval.metrics"),
        ("promptpress.eval.runner", "promptpress.service.app"),
        ("promptpress.cache.factory", "promptpress.compressor.tokens"),
        ("promptpress.adapters.documents", "promptpress.service.policy"),
    ],
)
def test_the_checker_flags_an_upward_import(module, target):
    # each of these was (or would be) a layering fault: the rule must call it one
    source, dest = group_of(module), group_of(target)
    assert dest != source and LEVEL[dest] >= LEVEL[source]
