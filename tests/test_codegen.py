"""Every shape of generated recording method compiles, passes ruff, and leaves linecache as it found it.

The templates of ``tradetel._codegen`` are rendered for every method (counter
``add`` with its default, up-down ``add``, ``set``, ``record``), every
aggregation kind, attribute keys from none to several (including keys that
shadow builtins), every subset of stateful policies, and the bound form; the
sources are compiled and checked by ruff with the names the generated code's
globals provide.
"""

from __future__ import annotations

import itertools
import linecache
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tradetel import _codegen

METHODS = (("add", "=1", True), ("add", "", False), ("set", "", False), ("record", "", False))
KEY_SETS = ((), ("exchange",), ("exchange", "symbol", "side"), ("type", "len", "float", "value"))

# What compile_function's namespace gives the generated code, so that ruff's undefined-name check means something.
HEADER = """\
from bisect import bisect_left as _bisect  # noqa: F401

_len = len
_type = type
_int = int
_float = float
_ANY_ERROR = Exception
"""


def _shapes() -> list[tuple[str, str]]:
    """(name, source) of every shape."""
    out = []
    for (method, default, non_negative), kind in itertools.product(METHODS, _codegen.WRITE_KINDS):
        out.append((f"bound-{method}-{kind}", _codegen.bound_source(method, default, non_negative, kind)))
        for keys in KEY_SETS:
            for count in range(len(keys) + 1):
                for stateful in itertools.combinations(range(len(keys)), count):
                    name = f"{method}{default}-{kind}-{'.'.join(keys) or 'none'}-{stateful}"
                    source = _codegen.unbound_source(method, default, non_negative, keys, stateful, kind)
                    out.append((name, source))
    return out


SHAPES = _shapes()


def test_every_shape_compiles() -> None:
    """Each rendered template is valid Python that defines the factory _make."""
    assert len(SHAPES) > 300
    for name, source in SHAPES:
        namespace: dict[str, object] = {}
        exec(compile(source, f"<{name}>", "exec"), namespace)
        assert callable(namespace["_make"]), name


def test_every_shape_passes_ruff(tmp_path: Path) -> None:
    """ruff finds nothing in any rendered template: no undefined or unused name, no syntax it objects to."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff not found: it is in the dev dependency group")
    for index, (_, source) in enumerate(SHAPES):
        (tmp_path / f"shape_{index}.py").write_text(HEADER + "\n\n" + source)
    done = subprocess.run(
        [ruff, "check", "--no-cache", "--isolated", "--select", "E,F,W,B,PIE", "--line-length", "200", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:]


def test_compiling_the_same_source_again_adds_no_linecache_entry() -> None:
    """A source compiled twice (every configure() does) reuses its linecache entry."""
    _, source = SHAPES[-1]
    _codegen.compile_function(source, "_make", "<tradetel-shape-test>")
    before = len(linecache.cache)
    _codegen.compile_function(source, "_make", "<tradetel-shape-test>")
    assert len(linecache.cache) == before
