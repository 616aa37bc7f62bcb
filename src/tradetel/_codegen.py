"""Generated recording methods: every source template of the ``recording="generated"`` path.

A handle's ``add``/``set``/``record`` is compiled per catalog entry shape
(method, attribute keys, stateful policies, aggregation kind), with the
entry's attribute keys as keyword-only parameters and the aggregation update
spliced in, so a hot call pays no extra Python call frame. The
``recording="plain"`` path (:mod:`tradetel._instruments`) does the same with
closures; ``docs/performance.md`` compares the two.

Generated code names everything with a leading underscore, builtins
included: its parameters are catalog attribute keys, which never start with
one, so a key such as ``len`` or ``type`` cannot shadow what the code calls.
"""

from __future__ import annotations

import functools
import hashlib
import linecache
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

__all__ = ["WRITE_KINDS", "bound_factory", "compile_function", "unbound_factory", "write_source"]

# How a value is written into each aggregation kind, as source lines using the names ``_agg`` (the
# aggregation) and ``_value`` (a checked int or float): the writers of ``tradetel._sdk`` as source.
_WRITE = {
    "sum": """\
with _agg._lock:
    _previous = _agg._value
    _agg._value = (0 if _previous is None else _previous) + _value
""",
    "last_value": """\
with _agg._lock:
    _agg._value = _value
""",
    "histogram": """\
with _agg._lock:
    _counts = _agg._value
    if _counts is None:
        _counts = _agg._value = [0] * (_len(_agg._boundaries) + 1)
    _agg._sum += _value
    if _agg._record_min_max:
        if _value < _agg._min:
            _agg._min = _value
        if _value > _agg._max:
            _agg._max = _value
    _counts[_bisect(_agg._boundaries, _value)] += 1
""",
    # Any other aggregation a view may select (exponential histogram, drop): the store's writer.
    "generic": "_write(_agg, _value)\n",
}
WRITE_KINDS = tuple(_WRITE)

_GLOBALS: dict[str, Any] = {"_bisect": bisect_left, "_len": len, "_type": type, "_int": int, "_float": float}
_GLOBALS["_ANY_ERROR"] = Exception


def write_source(kind: str, indent: str) -> str:
    """Source lines that write ``_value`` into ``_agg``, an aggregation of ``kind`` (see :data:`WRITE_KINDS`)."""
    return "".join(indent + line + "\n" for line in _WRITE[kind].splitlines())


def compile_function(source: str, factory: str, filename: str) -> Callable[..., Any]:
    """Compile ``source``, which defines the function ``factory``, with the generated code's globals.

    The source is registered with :mod:`linecache` under a ``<...>`` name made from
    its digest, so tracebacks through generated code show its lines, and the same
    source compiled again (each ``configure()``) reuses the entry instead of adding one.
    """
    namespace: dict[str, Any] = dict(_GLOBALS)
    if filename.endswith(">"):
        filename = f"{filename[:-1]}-{hashlib.blake2b(source.encode(), digest_size=8).hexdigest()}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    # The source is built from the fixed templates here and catalog keys checked to be identifiers.
    exec(compile(source, filename, "exec"), namespace)
    made: Callable[..., Any] = namespace[factory]
    return made


# The value check every generated function starts with: ints and floats in range
# pass two comparisons (NaN and infinities fail them); anything else goes to
# check_value, which converts, or drops and counts.
_VALUE_CHECK = """\
        _t = _type(_value)
        if (_t is not _int and _t is not _float) or not {low} <= _value <= _MAX:
            _value = _check(_value)
            if _value is None:
                return
"""

_UNBOUND_SOURCE = """\
def _make(_memo, _resolve, _slow, _check, _M, _MAX, _write{normalizers}):
    def {method}(_value{default}, /, {params}**_extra):
{value_check}\
        if _extra:
            _slow(_value, {key}, _extra)
            return
        _key = {key}
        try:
            {entry} = _memo[_key]
        except _ANY_ERROR:  # a miss, an unhashable value, or a value whose __hash__/__eq__ fails
            _agg = None
        if _agg is None:  # outside the except block: a failing policy must not show a KeyError as its context
            _resolve(_value, _key, None)
            return
{recheck}\
{write}\
    return {method}
"""

_BOUND_SOURCE = """\
def _make(_agg, _check, _overflowed, _on_overflow, _MAX, _write):
    def {method}(_value{default}, /):
{value_check}\
        if _overflowed:
            _on_overflow()
{write}\
    return {method}
"""


def _tuple_source(names: tuple[str, ...]) -> str:
    if not names:
        return "()"
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def unbound_source(
    method: str, default: str, non_negative: bool, params: tuple[str, ...], stateful: tuple[int, ...], kind: str
) -> str:
    """The source of the factory of an unbound recording method of this shape."""
    results = tuple(f"_r{i}" for i in range(len(stateful)))
    expected = tuple(f"_e{i}" for i in range(len(stateful)))
    recheck = "".join(
        f"            _r{i} = _M if {params[p]} is _M else _n{i}({params[p]})\n" for i, p in enumerate(stateful)
    )
    if stateful:
        # A policy that fails here goes through _resolve, which drops and counts the call.
        recheck = (
            f"        try:\n{recheck}        except _ANY_ERROR:\n"
            "            _resolve(_value, _key, None)\n            return\n"
        )
        differs = " or ".join(f"{r} != {e}" for r, e in zip(results, expected, strict=True))
        recheck += (
            f"        if {differs}:\n            _resolve(_value, _key, {_tuple_source(results)})\n            return\n"
        )
    return _UNBOUND_SOURCE.format(
        method=method,
        default=default,
        normalizers="".join(f", _n{i}" for i in range(len(stateful))),
        params="*, " + "".join(f"{p}=_M, " for p in params) if params else "",
        value_check=_VALUE_CHECK.format(low="0" if non_negative else "-_MAX"),
        key=_tuple_source(params),
        entry=", ".join(("_agg", *expected)),
        recheck=recheck,
        write=write_source(kind, " " * 8),
    )


def bound_source(method: str, default: str, non_negative: bool, kind: str) -> str:
    """The source of the factory of a bound recording method of this shape."""
    return _BOUND_SOURCE.format(
        method=method,
        default=default,
        value_check=_VALUE_CHECK.format(low="0" if non_negative else "-_MAX"),
        write=write_source(kind, " " * 8),
    )


@functools.lru_cache(maxsize=256)
def unbound_factory(
    method: str, default: str, non_negative: bool, params: tuple[str, ...], stateful: tuple[int, ...], kind: str
) -> Callable[..., Any]:
    """Compile (once per shape) the factory of an unbound recording method."""
    source = unbound_source(method, default, non_negative, params, stateful, kind)
    return compile_function(source, "_make", f"<tradetel-{method}>")


@functools.lru_cache(maxsize=64)
def bound_factory(method: str, default: str, non_negative: bool, kind: str) -> Callable[..., Any]:
    """Compile (once per shape) the factory of a bound recording method."""
    return compile_function(bound_source(method, default, non_negative, kind), "_make", f"<tradetel-bound-{method}>")
