"""fastconv's modules import each other without cycles, counting imports made inside functions
(a lazy import that dodges a cycle at load time still ties the two modules together).

The graph is read from the source with ast, not by importing: every `import a.b`, `from a import
b` (b a submodule: the edge goes to a.b, else to a) and relative import, at any depth. A package
reached only as the parent of an imported module is not an edge (Python runs its __init__ first,
but that does not make the two depend on each other)."""
import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "fastconv"


# Compiled modules (built from csrc/ by CMakeLists.txt, absent from a fresh clone's source tree).
EXTENSIONS = ("_C",)


def module_files(package_dir=PACKAGE_DIR):
    """{dotted module name: source path, or None for a compiled module} for the package."""
    modules = {f"{package_dir.name}.{name}": None for name in EXTENSIONS}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve_relative(module, is_package, level, target):
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module, path, modules):
    """The fastconv modules that `module` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = (_resolve_relative(module, is_package, node.level, node.module) if node.level
                      else node.module)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in modules else source)
    return {m for m in found if m in modules and m != module}


def import_graph(package_dir=PACKAGE_DIR):
    modules = module_files(package_dir)
    return {m: imports_of(m, p, modules) if p else set() for m, p in modules.items()}


def find_cycle(graph):
    """One cycle as a list of modules (first == last), or None."""
    state = {}  # module -> "open" while on the depth-first path, "done" after
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = "open"
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = "open"
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_fastconv_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("files, cycle", [
    ({"a.py": "from pkg import b\n", "b.py": "def f():\n    from . import a\n"}, True),
    ({"a.py": "import pkg.b\n", "b.py": "from pkg.c import x\n", "c.py": "from .a import y\n"}, True),
    ({"a.py": "from pkg.sub import inner\n", "sub/__init__.py": "",
      "sub/inner.py": "from ..a import z\n"}, True),
    ({"a.py": "from pkg import b\n", "b.py": "import os\n", "__init__.py": "from pkg import a\n"}, False),
])
def test_the_graph_sees_every_kind_of_import(tmp_path, files, cycle):
    package = tmp_path / "pkg"
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    assert (find_cycle(import_graph(package)) is not None) == cycle


# (lower, upper): nothing in the lower package imports the upper one (the commands and the report
# are built on the library; the commands on the report, never the other way).
ONE_WAY = [("fastconv.report", "fastconv.commands"), ("fastconv.interpret", "fastconv.report"),
           ("fastconv.augment", "fastconv.commands"), ("fastconv.nn", "fastconv.interpret")]


@pytest.mark.parametrize("lower, upper", ONE_WAY)
def test_packages_depend_one_way(lower, upper):
    def inside(module, package):
        return module == package or module.startswith(package + ".")
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() if inside(m, lower)
                    for t in targets if inside(t, upper))
    assert not upward, upward
