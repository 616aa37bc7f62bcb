"""Generated documentation stays current with the code it describes."""

from __future__ import annotations

import re
from pathlib import Path

from tradetel._docs import catalog_markdown, settings_markdown
from tradetel.catalog import DEFAULT_CATALOG

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_catalog_page_is_current() -> None:
    """docs/catalog.md equals `tradetel catalog --format markdown` (regenerate it when the catalog changes)."""
    assert (DOCS / "catalog.md").read_text() == catalog_markdown(DEFAULT_CATALOG) + "\n"


def test_configuration_reference_is_current() -> None:
    """The settings table in docs/configuration.md is the one generated from tradetel.config.SETTINGS."""
    text = (DOCS / "configuration.md").read_text()
    match = re.search(r"<!-- settings:begin[^\n]*-->\n(.*?)\n<!-- settings:end -->", text, re.S)
    assert match is not None
    assert match.group(1) == settings_markdown()


def test_doc_links_resolve() -> None:
    """Every relative link between the docs and the README points at a file that exists."""
    root = DOCS.parent
    for page in [root / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
