"""docs/scale-out.md's gunicorn configuration is the example's, and gunicorn itself finds tradetel's hooks in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gunicorn.app.base import Application

import tradetel.gunicorn

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "scale-out.md"
EXAMPLE_CONF = ROOT / "examples" / "gunicorn_app" / "gunicorn.conf.py"
HOOKS = ("pre_fork", "post_fork", "post_worker_init", "worker_exit")


class Loader(Application):
    """gunicorn's Application with its own config-file loader, without reading this process's command line."""

    def init(self, parser: object, opts: object, args: object) -> None:
        return None

    def load_config(self) -> None:
        return None

    def load(self) -> None:
        return None


def _page_conf_block() -> str:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S) if "bind = " in b]
    assert len(blocks) == 1
    return blocks[0]


def test_page_shows_the_example_configuration() -> None:
    """The gunicorn.conf.py on the page is the example's, past its docstring, line for line."""
    example = EXAMPLE_CONF.read_text()
    body = example[example.index('"""', 3) + 3 :].lstrip("\n")
    assert _page_conf_block() == body


@pytest.mark.parametrize("location", ["file", "module"])
def test_gunicorn_reads_tradetel_hooks(location: str, tmp_path: Path) -> None:
    """gunicorn's own loader, given the page's file or ``python:tradetel.gunicorn``, sets every hook to tradetel's."""
    app = Loader()
    if location == "file":
        conf = tmp_path / "gunicorn.conf.py"
        conf.write_text(_page_conf_block())
        app.load_config_from_module_name_or_filename(str(conf))
        assert app.cfg.workers == 4 and app.cfg.max_requests == 1000
    else:
        app.load_config_from_module_name_or_filename("python:tradetel.gunicorn")
    for hook in HOOKS:
        assert getattr(app.cfg, hook) is getattr(tradetel.gunicorn, hook), hook
