"""The documentation site builds without a warning, and documents every public module (``make docs``).

The build is Sphinx's HTML builder with warnings as errors (``-W --keep-going``), run in-process into
a temporary folder; the notebooks are rendered as stored, never executed (``nb_execution_mode =
"off"``), so the build takes about half a minute (importing every module, TensorFlow included).
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from pathlib import Path

import pytest

from tests.test_layout import PACKAGE, public_modules

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
pytest.importorskip("myst_nb", reason="the docs extra is not installed: pip install -e '.[docs]'")


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """Build the site once for the module's tests; fail with Sphinx's warnings when there are any."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from sphinx.cmd.build import build_main

    out = tmp_path_factory.mktemp("docs")
    messages = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(messages), warnings.catch_warnings():
        # the extensions' own use of Sphinx APIs due for removal (myst-nb: BuildEnvironment.app) is not ours to fix;
        # Sphinx's warnings about the documents and docstrings stay errors (-W)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        status = build_main(["-W", "--keep-going", "-b", "html", "-q", "-d", str(out / "doctrees"), str(DOCS),
                             str(out / "html")])
    assert status == 0, f"the documentation build failed or warned:\n{messages.getvalue()}"
    assert messages.getvalue().strip() == ""
    return out / "html"


def _text(page: Path) -> str:
    """The page's text: tags removed, runs of white space made one space."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


@pytest.mark.slow
def test_every_public_module_has_its_api_page_with_every_public_name(html):
    modules = public_modules(PACKAGE)
    assert len(modules) > 40
    api = html / "_generated" / "api"
    missing_pages = [m for m in modules if not (api / f"{m}.html").is_file()]
    assert missing_pages == []
    index = (api / "index.html").read_text(encoding="utf-8")
    assert [m for m in modules if f'href="{m}.html"' not in index] == []
    undocumented = []
    for name in modules:
        page = (api / f"{name}.html").read_text(encoding="utf-8")
        module = importlib.import_module(name)
        for public in module.__all__:
            obj = getattr(module, public)  # classes and functions defined here (module data need a #: comment)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if obj.__module__ == name and f'id="{name}.{public}"' not in page:
                    undocumented.append(f"{name}.{public}")
    assert undocumented == []


@pytest.mark.slow
def test_api_pages_render_numpydoc_sections(html):
    page = _text(html / "_generated" / "api" / "sodinn.adi.io.html")
    assert "Parameters" in page and "Returns" in page and "Raises" in page
    assert "read_vip_npz" in page  # the VIP reader of the interoperability page
    seq = _text(html / "_generated" / "api" / "sodinn.adi.sequence.html")
    assert "from_npz" in seq and "to_fits" in seq


@pytest.mark.slow
def test_conventions_tutorials_and_quick_start_are_rendered(html):
    conventions = _text(html / "conventions.html")
    assert "east of north" in conventions and "north_offset_deg" in conventions
    assert "(N−1)/2" in conventions  # the README's data conventions, included
    assert (html / "_images" / "sky_conventions.png").is_file()
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert notebooks and all((html / "_generated" / "tutorials" / f"{nb}.html").is_file() for nb in notebooks)
    assert "PCA-ADI" in _text(html / "_generated" / "tutorials" / "01_adi_core_naco.html")
    detection = (html / "_generated" / "tutorials" / "02_detection_naco.html").read_text(encoding="utf-8")
    assert 'href="../../detection.html"' in detection  # its README link, pointed at the site's page of that section
    assert "<img" in detection and "expected_fp" in _text(html / "_generated" / "tutorials" / "02_detection_naco.html")
    levels = _text(html / "detection.html")
    assert "significance_sigma" in levels and "The candidate table" in levels  # the README's section, included
    quick = _text(html / "installation.html")
    assert "make demo" in quick and "make docs" in quick and "sodinn reduce" in quick
    assert ".npz" in _text(html / "interoperability.html")


def test_the_api_pages_come_from_the_package():
    """The module list of the site is the package's own: docs/conf.py walks sodinn/ (no list to go stale)."""
    import runpy

    conf = runpy.run_path(str(DOCS / "conf.py"), run_name="sodinn_docs_conf")
    assert conf["public_modules"]() == sorted(public_modules(PACKAGE))
    assert conf["nb_execution_mode"] == "off"
