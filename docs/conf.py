"""Sphinx configuration: MyST pages, the pydata theme, references generated from code.

Build (what ``./dev test`` runs; no network needed):

    sphinx-build -W --keep-going -E -q -b html docs build/docs

Two pages come from the code, so they cannot drift from it:

- ``config-reference.md`` is written by ``hub-rtc config-reference`` and kept in
  the tree (it reads well on GitHub too); the build fails when it is not what the
  traits say, as the unit tests do.
- ``openapi.md`` is rendered from ``openapi.yaml`` at every build
  (:func:`hub_rtc.docs.openapi_reference`); the file in the tree is only a stub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sphinx.application import Sphinx
from sphinx.util import logging

from hub_rtc import __version__
from hub_rtc.docs import config_reference, openapi_reference

DOCS = Path(__file__).resolve().parent
log = logging.getLogger(__name__)

project = "hub_rtc"
copyright = "hub_rtc contributors"
version = release = __version__

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
# Links such as [the API](api.md#documents-sessionsiddocumentspath) name headings by slug.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
# Every page and every cross-reference is checked; with -W a broken one fails the build.
nitpicky = True

html_theme = "pydata_sphinx_theme"
html_title = "hub_rtc"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars: dict[str, list[str]] = {"**": ["sidebar-nav-bs"]}


def _generated_pages(app: Sphinx, docname: str, source: list[str]) -> None:
    """Fill the REST API reference from the spec; check the config reference is current."""
    if docname == "openapi":
        spec_path = DOCS / "openapi.yaml"
        app.env.note_dependency(str(spec_path))
        source[0] = openapi_reference(yaml.safe_load(spec_path.read_text(encoding="utf-8")))
    elif docname == "config-reference" and source[0] != config_reference():
        log.warning(
            "config-reference.md is not what the traits say; run: "
            "hub-rtc config-reference > docs/config-reference.md",
            location=docname,
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", _generated_pages)
    return {"parallel_read_safe": True}
