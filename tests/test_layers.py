"""The package's layers, read from its source (no TensorFlow): the cells sit below the
back-ends, the models below everything that uses them, and no module-level imports form a
cycle."""

import ast
import os

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "tfcharrnn")


def modules():
    """{dotted name: path} of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def imports(path, top_level_only=False):
    """The tfcharrnn modules `path` imports (`from a import b` counts as a.b when a.b is a
    module, else a)."""
    known = modules()
    tree = ast.parse(open(path, encoding="utf-8").read())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tfcharrnn"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfcharrnn"):
            for a in node.names:
                dotted = f"{node.module}.{a.name}"
                found.add(dotted if dotted in known else node.module)
    return found


def test_models_import_nothing_above_them():
    allowed = ("tfcharrnn.models", "tfcharrnn.config", "tfcharrnn.errors")
    for name, path in modules().items():
        if name.startswith("tfcharrnn.models"):
            above = {m for m in imports(path) if not m.startswith(allowed)}
            assert not above, f"{name} imports {above}"


def test_cells_import_only_the_ops_and_each_other():
    for name, path in modules().items():
        if name.startswith("tfcharrnn.models.cells"):
            other = {m for m in imports(path)
                     if not m.startswith(("tfcharrnn.models.cells", "tfcharrnn.models.ops"))}
            assert not other, f"{name} imports {other}"


def test_no_import_cycles_at_module_level():
    known = modules()
    def with_parents(names):
        # Importing a.b.c runs the packages a and a.b first.
        return {".".join(m.split(".")[:i]) for m in names for i in range(2, m.count(".") + 2)}

    graph = {name: {m for m in with_parents(imports(path, top_level_only=True))
                    if m in known and m != name and not name.startswith(m + ".")}
             for name, path in known.items()}
    state = {}

    def visit(name, stack):
        state[name] = "open"
        for nxt in graph[name]:
            if state.get(nxt) == "open":
                raise AssertionError(" -> ".join(stack + [name, nxt]))
            if nxt not in state:
                visit(nxt, stack + [name])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [])
