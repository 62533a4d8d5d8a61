"""Sphinx configuration of the cosinter documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``).
Only Sphinx built-ins are used: autodoc, napoleon, mathjax and the alabaster theme.
Two local extensions in ``docs/_ext`` write reference pages into ``docs/generated/``
(git-ignored) at every build:

* ``case_schema``: the case-file reference, from the pydantic schema in ``cosinter.case``;
* ``library_table``: the material library, from ``cosinter/models/library/*.toml``.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # import the cosinter in this checkout, installed or not
sys.path.insert(0, str(DOCS / "_ext"))

try:
    release = package_version("cosinter")
except PackageNotFoundError:
    release = "unknown"
version = release

project = "cosinter"
author = "the cosinter developers"
copyright = "the cosinter developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "case_schema",
    "library_table",
]

# generated/*.rst are pulled in with ``.. include::``, never built as pages of their own
exclude_patterns = ["_build", "generated", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
root_doc = "index"
language = "en"
today_fmt = "%Y-%m-%d"
pygments_style = "sphinx"

# -- autodoc / napoleon (numpy-style docstrings) ------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

# -- HTML -----------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"cosinter {release}"
html_static_path = ["_static"]
html_theme_options = {
    "description": "Co-sintering transport across cathode | coating | electrolyte stacks",
    "page_width": "1180px",
    "sidebar_width": "230px",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
html_show_sourcelink = False


# -- docs/performance.md (written by the benchmark work) shown as it is ----------------
def _performance_page(app: Any) -> None:
    """Write generated/performance.rst: the Markdown record verbatim, or a placeholder."""
    record = DOCS / "performance.md"
    if record.is_file():
        # a leading / is the Sphinx source folder (docs/)
        text = ".. literalinclude:: /performance.md\n   :language: markdown\n"
    else:
        text = "No measurements are recorded yet (``docs/performance.md`` does not exist).\n"
    target = DOCS / "generated" / "performance.rst"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def setup(app: Any) -> None:
    """Sphinx hook: show docs/performance.md if the benchmark has written it."""
    app.connect("builder-inited", _performance_page)
