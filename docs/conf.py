"""Sphinx configuration of the sodinn documentation (``make docs``; built by tests/test_docs.py with -W).

The API reference is generated from the package at every build: one page per public module (every
part of its dotted name without a leading ``_``), found by walking ``sodinn/``, so a new module is
documented without editing anything here. The tutorial notebooks are copied from ``notebooks/`` and
rendered as stored (``nb_execution_mode = "off"``: the long notebooks are never re-run here).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
GENERATED = DOCS / "_generated"
sys.path.insert(0, str(REPO))

from sodinn._version import __version__  # noqa: E402

project = "sodinn"
author = "sodinn developers"
copyright = "2026, sodinn developers"  # noqa: A001
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"
html_theme = "alabaster"
html_theme_options = {"description": "Supervised deep learning for exoplanet detection in ADI", "fixed_sidebar": True}
html_static_path: list[str] = []

# autodoc + numpydoc: the docstrings are numpydoc (tests/test_docstrings.py checks them)
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections give types, shapes and units
autoclass_content = "class"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# myst-nb: render the notebooks as stored, never execute them during the build
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
suppress_warnings = ["myst.header"]

#: The order of the API reference: the layers of the package (README, module map)
SECTIONS = (
    ("sodinn", "Shared foundations: settings, synthetic data, the job engine, errors, plots"),
    ("sodinn.adi", "The ADI core: FITS and VIP input, PSF, geometry, rotation, PCA, baselines, S/N"),
    ("sodinn.mlar", "Labeled MLAR samples"),
    ("sodinn.learn", "Models and training"),
    ("sodinn.detect", "Detection: probability maps, calibration, candidates, scoring"),
    ("sodinn.evaluate", "Evaluation: injected copies, ROC curves, contrast curves, detection limits"),
    ("sodinn.pipeline", "Products of each step"),
    ("sodinn.cli", "The sodinn command"),
)


def public_modules(root: Path = REPO / "sodinn") -> list[str]:
    """Return the dotted names of the public modules of the package (no part starting with ``_``).

    Packages' ``__init__`` and ``__main__`` are not modules of their own here (a package's docstring
    heads its section).
    """
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] in ("__init__", "__main__") or any(p.startswith("_") for p in parts):
            continue
        names.append(".".join(parts))
    return names


def _write(path: Path, text: str) -> None:
    """Write a generated file only when it changes (Sphinx then rebuilds only what changed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _title(text: str, mark: str = "=") -> str:
    return f"{text}\n{mark * len(text)}\n"


def generate_api() -> list[str]:
    """Write one page per public module and the API index into ``_generated/api``; return the module names."""
    api = GENERATED / "api"
    modules = public_modules()
    for name in modules:
        _write(api / f"{name}.rst", f"{_title(name)}\n.. automodule:: {name}\n")
    lines = [_title("API reference"), "",
             "One page per public module, in the order the data flow. The pages are generated from the package "
             "at every build.", ""]
    for package, what in SECTIONS:
        members = [m for m in modules if m.rpartition(".")[0] == package]
        lines += [_title(f"{package}: {what}", "-"), f".. automodule:: {package}", "   :no-members:", "",
                  ".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   {m}" for m in members] + [""]
    listed = {m for m in modules if m.rpartition(".")[0] in dict(SECTIONS)}
    unlisted = sorted(set(modules) - listed)
    if unlisted:  # a new subpackage: documented all the same, under its own heading
        lines += [_title("Other modules", "-"), ".. toctree::", "   :maxdepth: 1", ""] + [f"   {m}" for m in unlisted]
    _write(api / "index.rst", "\n".join(lines) + "\n")
    # remove the pages of modules that no longer exist
    for page in api.glob("sodinn*.rst"):
        if page.stem not in modules:
            page.unlink()
    return modules


#: The notebooks' links to README sections (right on GitHub and in Jupyter), and the site's page of each section
README_LINKS = {"../README.md#what-a-candidates-false-alarm-level-means": "../../detection.md"}


def copy_tutorials() -> list[str]:
    """Copy the notebooks of ``notebooks/`` into ``_generated/tutorials``; return their names.

    Links to README sections (:data:`README_LINKS`) are pointed at the site's page that includes them.
    """
    out = GENERATED / "tutorials"
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        target = out / nb.name
        text = nb.read_bytes()
        for link, page in README_LINKS.items():
            text = text.replace(f"]({link})".encode(), f"]({page})".encode())
        if not target.is_file() or target.read_bytes() != text:
            target.write_bytes(text)
        names.append(nb.stem)
    return names


def sky_conventions_figure(path: Path = GENERATED / "sky_conventions.png") -> Path:
    """Draw the figure of the conventions page: a north-up, east-left frame, a companion, its PA and separation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.set_xlim(0.7, -0.7)  # east (positive offsets in right ascension) to the left
    ax.set_ylim(-0.7, 0.7)
    ax.set_xlabel("Δα (arcsec, east to the left)")
    ax.set_ylabel("Δδ (arcsec, north up)")
    ax.plot(0, 0, marker="*", ms=14, color="gold", mec="k")
    pa = np.deg2rad(212.0)
    sep = 0.49
    x, y = sep * np.sin(pa), sep * np.cos(pa)  # east of north: Δα = sep sin PA, Δδ = sep cos PA
    ax.plot(x, y, "o", ms=9, mfc="none", mec="tab:red", mew=2)
    ax.plot([0, x], [0, y], color="tab:red", lw=1)
    ax.text(0.62, -0.6, "companion: sep 0.49″, PA 212°", fontsize=8, color="tab:red")
    arc = np.linspace(0, pa, 100)
    ax.plot(0.18 * np.sin(arc), 0.18 * np.cos(arc), color="tab:blue", lw=1)
    ax.text(0.3, 0.1, "PA", color="tab:blue")
    origin = np.array([-0.45, 0.35])  # the compass, top right
    for step, label in (((0.0, 0.25), "N"), ((0.25, 0.0), "E")):
        ax.annotate("", xy=tuple(origin + step), xytext=tuple(origin), arrowprops={"arrowstyle": "->", "lw": 1.5})
        ax.text(*(origin + 1.25 * np.array(step)), label, ha="center", va="center")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


generate_api()
copy_tutorials()
sky_conventions_figure()
