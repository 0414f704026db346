"""The layout contract of the package: every import points down the data flow, with no cycle.

The data flow cube -> samples -> model -> maps -> metrics -> products -> command line, and the package
is cut in that order (:data:`LAYERS`). Every import of every module is read from its source (also those
inside functions and under ``TYPE_CHECKING``), and the tests below fail, naming the modules, on:

- an import of a later layer (an "upward" import), or of another subpackage of the same layer;
- an import cycle;
- a private name (``_name``) imported from another module, or a private module of another subpackage;
- a matplotlib backend picked, or a figure written, outside :mod:`sodinn.pipeline`;
- Keras or TensorFlow imported outside the model layer (:mod:`sodinn.learn`, and the optional Keras
  path of :mod:`sodinn.mlar.linalg`);
- a public module without ``__all__``, without its test file (``tests/<subpackage>/test_<module>.py``),
  or missing from the README's module map.

The checker itself is tested on a small package with one fault of each kind.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sodinn"

#: The layers in the order the data flow: a module may import modules of earlier layers, and the modules of
#: its own subpackage (the base modules of the root are one unit). The root ``sodinn/__init__.py`` is last:
#: it re-exports public names lazily, and nothing imports it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("sodinn._version", "sodinn.exceptions", "sodinn._validation", "sodinn._atomic", "sodinn._platform", "sodinn._moved", "sodinn.engine"),
    ("sodinn.config", "sodinn.plotting"),
    ("sodinn.adi",),
    ("sodinn.datasets",),
    ("sodinn.mlar",),
    ("sodinn.learn",),
    ("sodinn.detect",),
    ("sodinn.evaluate",),
    ("sodinn.pipeline",),
    ("sodinn.cli",),
    ("sodinn",),
)

#: Where Keras (or TensorFlow) may be imported
KERAS_HOMES = ("sodinn.learn", "sodinn.mlar.linalg")
#: Where figures may be written
FIGURE_HOMES = ("sodinn.pipeline",)


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a module of the package (or an outside module)."""

    source: str
    target: str
    name: str | None
    line: int
    module: str = ""


def modules(root: Path) -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(root: Path) -> Iterator[Import]:
    """Every import of every module of the package at ``root``: in functions, under ``TYPE_CHECKING``, anywhere."""
    mods = modules(root)
    for name, path in mods.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(name, _resolve(alias.name, None, mods), None, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:
                    parts = base.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    target = ".".join(parts + ([target] if target else []))
                for alias in node.names:
                    yield Import(name, _resolve(target, alias.name, mods), alias.name, node.lineno, target)


def _resolve(target: str, name: str | None, mods: dict[str, Path]) -> str:
    """The module an import reaches: ``from a import b`` is module ``a.b`` when that is a module, else ``a``."""
    if name is not None and f"{target}.{name}" in mods:
        return f"{target}.{name}"
    return target


def layer(module: str) -> int:
    """The index of the layer of ``module`` in :data:`LAYERS` (longest prefix)."""
    best, where = -1, -1
    for index, members in enumerate(LAYERS):
        for prefix in members:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, where = len(prefix), index
    if where < 0:
        msg = f"{module} is in no layer of LAYERS; add it"
        raise AssertionError(msg)
    return where


def unit(module: str, root: Path) -> str:
    """The subpackage of a module (``sodinn.adi`` for ``sodinn.adi`` and ``sodinn.adi.pca``), or the root's name."""
    parts = module.split(".")
    if len(parts) > 1 and (root / parts[1] / "__init__.py").is_file():
        return ".".join(parts[:2])
    return root.name


def upward_imports(root: Path) -> list[str]:
    """Imports of a later layer, or of another unit of the same layer."""
    pkg = root.name
    bad = []
    for imp in imports(root):
        if not imp.target.startswith(pkg) or imp.target == imp.source:
            continue
        if imp.source == pkg and imp.target.startswith(pkg + "."):
            continue  # the root re-exports
        src, dst = layer(imp.source), layer(imp.target)
        if dst > src or (dst == src and unit(imp.source, root) != unit(imp.target, root) and src != 0):
            bad.append(f"{imp.source} imports {imp.target} (line {imp.line}): layer {dst} is not below layer {src}")
    return sorted(set(bad))


def cycles(root: Path) -> list[list[str]]:
    """The strongly connected components of more than one module of the import graph (Tarjan)."""
    mods = modules(root)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for imp in imports(root):
        if imp.target in mods and imp.target != imp.source:
            if not (imp.source == root.name and imp.target.startswith(root.name + ".")):
                edges[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return found


def private_imports(root: Path) -> list[str]:
    """Private names imported from another module, and private modules of another unit."""
    bad = []
    for imp in imports(root):
        if not imp.target.startswith(root.name) or imp.target == imp.source:
            continue
        is_module = imp.target == f"{imp.module}.{imp.name}"
        if imp.name and imp.name.startswith("_") and not imp.name.startswith("__") and not is_module:
            bad.append(f"{imp.source} imports the private name {imp.name} from {imp.target} (line {imp.line})")
        leaf = imp.target.rpartition(".")[2]
        if leaf.startswith("_") and not leaf.startswith("__") and unit(imp.target, root) != root.name \
                and unit(imp.target, root) != unit(imp.source, root):
            bad.append(f"{imp.source} imports {imp.target}, a private module of another subpackage (line {imp.line})")
    return sorted(set(bad))


def _calls(path: Path) -> Iterator[tuple[str, int]]:
    """``(dotted callee, line)`` of every call of the form ``a.b(...)``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            parts = [node.func.attr]
            value = node.func.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                parts.append(value.id)
            yield ".".join(reversed(parts)), node.lineno


def figure_faults(root: Path) -> list[str]:
    """A matplotlib backend picked anywhere, or a figure written outside :data:`FIGURE_HOMES`."""
    bad = []
    for name, path in modules(root).items():
        for callee, line in _calls(path):
            if callee in ("matplotlib.use", "plt.switch_backend", "matplotlib.pyplot.switch_backend"):
                bad.append(f"{name} picks a matplotlib backend ({callee}, line {line})")
            if callee.endswith(".savefig") and not name.startswith(FIGURE_HOMES):
                bad.append(f"{name} writes a figure ({callee}, line {line}); only {', '.join(FIGURE_HOMES)} does")
    return bad


def keras_imports(root: Path) -> list[str]:
    """Imports of Keras or TensorFlow outside :data:`KERAS_HOMES`."""
    return sorted({f"{imp.source} imports {imp.target} (line {imp.line})" for imp in imports(root)
                   if imp.target.split(".")[0] in ("keras", "tensorflow") and not imp.source.startswith(KERAS_HOMES)})


def public_modules(root: Path) -> dict[str, Path]:
    """The modules whose every part is public (no ``_`` prefix), packages' ``__init__`` and ``__main__`` left out."""
    return {m: p for m, p in modules(root).items()
            if p.name not in ("__init__.py", "__main__.py") and not any(part.startswith("_") for part in m.split("."))}


# ----------------------------------------------------------------------------- the contract on sodinn


def test_every_import_points_down_the_data_flow():
    assert upward_imports(PACKAGE) == []


def test_there_is_no_import_cycle():
    assert cycles(PACKAGE) == [], " ; ".join(" <-> ".join(c) for c in cycles(PACKAGE))


def test_no_module_imports_another_modules_private_names():
    assert private_imports(PACKAGE) == []


def test_library_code_never_picks_a_backend_and_only_the_pipeline_writes_figures():
    assert figure_faults(PACKAGE) == []


def test_keras_is_imported_only_where_the_models_live():
    assert keras_imports(PACKAGE) == []


def test_every_public_module_declares_its_surface():
    missing = [m for m, p in public_modules(PACKAGE).items() if "__all__" not in {
        t.id for node in ast.parse(p.read_text()).body if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}]
    assert missing == []


def test_tests_mirror_the_package():
    missing = []
    for name in public_modules(PACKAGE):
        parts = name.split(".")[1:]
        expected = REPO / "tests" / Path(*parts[:-1]) / f"test_{parts[-1]}.py"
        if not expected.is_file():
            missing.append(str(expected.relative_to(REPO)))
    assert missing == []


def test_the_readme_module_map_matches_the_tree():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Module map"):]
    section = section[: section.index("\n## ", 4)]
    listed = set(re.findall(r"^\| `(sodinn(?:\.[a-z_]+)*)` \|", section, flags=re.MULTILINE))
    tree = {m for m in modules(PACKAGE) if not m.endswith("__main__")}
    assert sorted(tree - listed) == [] and sorted(listed - tree) == []


# ----------------------------------------------------------------------------- the checker catches each kind of fault


@pytest.fixture()
def faulty(tmp_path):
    """A tiny package laid out like sodinn with one fault of each kind."""
    root = tmp_path / "sodinn"
    files = {
        "__init__.py": "from sodinn import adi\n",
        "_validation.py": "",
        "config.py": "from sodinn import _validation\n",
        "plotting.py": "",
        "datasets.py": "",
        "adi/__init__.py": "",
        "adi/pca.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sodinn.learn.models import Model\n",
        "mlar/__init__.py": "",
        "mlar/_kernels.py": "",
        "mlar/samples.py": "from sodinn.mlar import _kernels\nfrom sodinn.adi.pca import _helper\n",
        "learn/__init__.py": "",
        "learn/models.py": "def f():\n    import keras\n    from sodinn.detect.maps import g\n",
        "detect/__init__.py": "",
        "detect/maps.py": "import matplotlib\nmatplotlib.use('Agg')\nfrom sodinn.learn import models\nfrom sodinn.mlar._kernels import k\n"
                          "def g(fig):\n    fig.savefig('x.png')\n",
        "evaluate/__init__.py": "",
        "evaluate/roc.py": "import keras\n",
        "pipeline/__init__.py": "",
        "pipeline/report.py": "def save(fig):\n    fig.savefig('y.png')\n",
        "cli/__init__.py": "from sodinn.pipeline import report\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_names_upward_imports(faulty):
    found = upward_imports(faulty)
    assert any(f.startswith("sodinn.adi.pca imports sodinn.learn.models") for f in found)  # under TYPE_CHECKING
    assert any(f.startswith("sodinn.learn.models imports sodinn.detect.maps") for f in found)  # inside a function
    assert not any(f.startswith("sodinn.cli") or f.startswith("sodinn imports") for f in found)


def test_the_checker_names_cycles(faulty):
    assert cycles(faulty) == [["sodinn.detect.maps", "sodinn.learn.models"]]


def test_the_checker_names_private_imports(faulty):
    found = private_imports(faulty)
    assert any("private name _helper from sodinn.adi.pca" in f for f in found)
    assert any(f.startswith("sodinn.detect.maps imports sodinn.mlar._kernels, a private module") for f in found)
    assert not any(f.startswith("sodinn.mlar.samples imports sodinn.mlar._kernels") for f in found)  # its own subpackage
    assert not any(f.startswith("sodinn.config") for f in found)  # the root's shared _validation


def test_the_checker_names_figure_and_keras_faults(faulty):
    figures = figure_faults(faulty)
    assert any("sodinn.detect.maps picks a matplotlib backend" in f for f in figures)
    assert any("sodinn.detect.maps writes a figure" in f for f in figures)
    assert not any(f.startswith("sodinn.pipeline") for f in figures)
    assert keras_imports(faulty) == ["sodinn.evaluate.roc imports keras (line 1)"]
