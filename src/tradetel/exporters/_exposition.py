"""Prometheus text 0.0.4 and OpenMetrics 1.0 writers for OpenTelemetry ``MetricsData``.

Both formats share the names, label sets and bucket texts, so a scrape that switches format keeps every
series identity (``le="0.05"`` in both). Label names follow the OpenTelemetry compatibility rules:
invalid characters become ``_`` (runs of them one ``_``), a leading digit gets a ``_`` prefix, and keys
that collide after this are merged into one label whose values are joined with ``;`` in the order of the
sorted original keys (``host.name`` and ``host_name`` → ``host_name="a;b"``).
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from itertools import accumulate
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from ..catalog import Kind
from ._naming import prometheus_name

__all__ = ["OPENMETRICS_CONTENT_TYPE", "TEXT_CONTENT_TYPE", "render", "render_openmetrics"]

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_logger = logging.getLogger("tradetel")
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_PROM_TYPE = {Kind.COUNTER: "counter", Kind.UP_DOWN_COUNTER: "gauge", Kind.GAUGE: "gauge", Kind.HISTOGRAM: "histogram"}
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def _label_name(key: str, histogram: bool = False) -> str:
    name = key if key and not key[0].isdigit() else "_" + key
    if _INVALID_NAME_CHARS.search(name):
        name = _UNDERSCORES.sub("_", _INVALID_NAME_CHARS.sub("_", name))
    if name.startswith("__"):
        name = "key" + name  # names starting with __ are reserved for Prometheus's own labels
    if histogram and name == "le":
        name = "exported_le"  # `le` is the bucket label; Prometheus renames clashing labels the same way
    return name


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ",".join(_label_text(v) for v in value) + "]"
    return str(value)


# key -> (label name, whether the name differs from the key); one table per label namespace.
_NAMES: dict[str, tuple[str, bool]] = {}
_HISTOGRAM_NAMES: dict[str, tuple[str, bool]] = {}


def _name_of(key: str, histogram: bool) -> tuple[str, bool]:
    table = _HISTOGRAM_NAMES if histogram else _NAMES
    entry = table.get(key)
    if entry is None:
        if len(table) >= 4096:
            table.clear()
        name = _label_name(key, histogram)
        entry = table[key] = (name, name != key)
    return entry


def _labels(attributes: Mapping[str, Any] | None, histogram: bool = False) -> str:
    """``a="1",b="2"`` for ``attributes``, sorted by key; keys that collide once sanitised are merged."""
    if not attributes:
        return ""
    parts = []
    renamed = False
    table = _HISTOGRAM_NAMES if histogram else _NAMES
    for key, value in sorted(attributes.items()):
        entry = table.get(key) or _name_of(key, histogram)
        if entry[1]:
            renamed = True
        name = entry[0]
        text = value if type(value) is str else _label_text(value)
        if "\\" in text or "\n" in text or '"' in text:
            text = _escape_value(text)
        parts.append(f'{name}="{text}"')
    if renamed and len({_name_of(key, histogram)[0] for key in attributes}) != len(attributes):
        return _merged_labels(attributes, histogram)
    return ",".join(parts)


def _label_mapping(attributes: Mapping[str, Any] | None, histogram: bool = False) -> dict[str, str]:
    """Label name → value for ``attributes``, colliding keys merged as in the exposition (unescaped)."""
    merged: dict[str, list[str]] = {}
    for key, value in sorted((attributes or {}).items()):
        merged.setdefault(_name_of(key, histogram)[0], []).append(_label_text(value))
    return {name: ";".join(values) for name, values in sorted(merged.items())}


def _merged_labels(attributes: Mapping[str, Any], histogram: bool) -> str:
    return ",".join(f'{name}="{_escape_value(value)}"' for name, value in _label_mapping(attributes, histogram).items())


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _sample(name: str, labels: str, value: float | int) -> str:
    return f"{name}{{{labels}}} {_number(value)}\n" if labels else f"{name} {_number(value)}\n"


def _kind(data: Any) -> Kind | None:
    if isinstance(data, Sum):
        return Kind.COUNTER if data.is_monotonic else Kind.UP_DOWN_COUNTER
    if isinstance(data, Gauge):
        return Kind.GAUGE
    if isinstance(data, Histogram):
        return Kind.HISTOGRAM
    return None  # exponential histograms have no classic text form


_TAILS: dict[tuple[float, ...], tuple[str, ...]] = {}


def _bucket_tails(bounds: Sequence[float]) -> tuple[str, ...]:
    """``le="<bound>"} `` for each bound, rendered once per set of boundaries instead of once per line."""
    key = tuple(bounds)
    tails = _TAILS.get(key)
    if tails is None:
        if len(_TAILS) >= 1024:
            _TAILS.clear()
        tails = _TAILS[key] = tuple(f'le="{_number(float(bound))}"}} ' for bound in key)
    return tails


class _Family:
    """One metric family: its kind, help text, unit and the rendered lines of its series."""

    __slots__ = ("description", "kind", "lines", "metric_name", "unit")

    def __init__(self, kind: Kind, description: str, metric_name: str, unit: str) -> None:
        self.kind = kind
        self.description = description
        self.metric_name = metric_name
        self.unit = unit
        self.lines: list[str] = []


def _families(data: MetricsData, names: Collection[str] | None) -> dict[str, tuple[_Family, list[Any]]]:
    """The metrics of ``data`` grouped by Prometheus name, each with its data points (not rendered yet)."""
    families: dict[str, tuple[_Family, list[Any]]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = _kind(metric.data)
                if kind is None:
                    continue
                name = prometheus_name(metric.name, kind, metric.unit or "")
                if names is not None and not _wanted(name, kind, names):
                    continue
                entry = families.get(name)
                if entry is None:
                    family = _Family(kind, metric.description or metric.name, metric.name, metric.unit or "")
                    entry = families[name] = (family, [])
                elif entry[0].kind is not kind:
                    _logger.warning("tradetel: metric %s has two kinds; the second is not exposed", name)
                    continue
                entry[1].append(metric.data.data_points)
    return families


def _wanted(name: str, kind: Kind, names: Collection[str]) -> bool:
    if kind is Kind.HISTOGRAM:
        return any(name + suffix in names for suffix in _HISTOGRAM_SUFFIXES)
    return name in names


def _target_info_attributes(data: MetricsData) -> Mapping[str, Any] | None:
    for resource_metrics in data.resource_metrics[:1]:
        return resource_metrics.resource.attributes or None
    return None


def render(data: MetricsData, *, target_info: bool = True, names: Collection[str] | None = None) -> bytes:
    """Render ``data`` (cumulative) as Prometheus text exposition format 0.0.4.

    Args:
        target_info: expose the resource as one ``target_info`` series.
        names: keep only the samples with these names (``trading_orders_filled_total``,
            ``..._bucket``), as ``prometheus_client`` does for ``?name[]=``.
    """
    out: list[str] = []
    attributes = _target_info_attributes(data) if target_info else None
    if attributes and (names is None or "target_info" in names):
        out.append("# HELP target_info Target metadata\n# TYPE target_info gauge\n")
        out.append(_sample("target_info", _labels(attributes), 1))
    for name, (family, point_lists) in _families(data, names).items():
        lines = family.lines
        for points in point_lists:
            _text_lines(name, family.kind, points, lines)
        if names is not None and family.kind is Kind.HISTOGRAM:
            lines = _only_samples(lines, names)
            if not lines:
                continue
        out.append(f"# HELP {name} {_escape_help(family.description)}\n# TYPE {name} {_PROM_TYPE[family.kind]}\n")
        out.extend(lines)
    return "".join(out).encode("utf-8", "replace")  # a lone surrogate (from os.environ) becomes "?"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _text_lines(name: str, kind: Kind, points: Sequence[Any], lines: list[str]) -> None:
    if kind is Kind.HISTOGRAM:
        bounds: Any = None
        tails: tuple[str, ...] = ()
        for point in points:
            assert isinstance(point, HistogramDataPoint)
            if point.explicit_bounds is not bounds:  # the SDK shares one tuple per instrument
                bounds = point.explicit_bounds
                tails = _bucket_tails(bounds)
            labels = _labels(point.attributes, histogram=True)
            _histogram_lines(name, labels, point, lines, tails, with_sum=True)
    else:
        for point in points:
            assert isinstance(point, NumberDataPoint)
            lines.append(_sample(name, _labels(point.attributes), point.value))


def _histogram_lines(
    name: str,
    labels: str,
    point: HistogramDataPoint,
    lines: list[str],
    tails: tuple[str, ...],
    *,
    with_sum: bool,
    exemplars: bool = False,
) -> None:
    head = f"{name}_bucket{{{labels}," if labels else f"{name}_bucket{{"
    # One string per series: the bucket lines share the head, the bound texts are precomputed.
    cumulative = accumulate(point.bucket_counts)
    buckets = [f"{head}{tail}{count}\n" for tail, count in zip(tails, cumulative, strict=False)]
    buckets.append(f'{head}le="+Inf"}} {point.count}\n')
    if exemplars and point.exemplars:
        # An OpenMetrics exemplar goes between a bucket's count and its newline: `... 4 # {trace_id="..."} 0.02 <t>`.
        for found in point.exemplars:
            index = bisect_left(point.explicit_bounds, found.value)
            buckets[index] = buckets[index][:-1] + _exemplar_text(found) + "\n"
    if with_sum:
        buckets.append(_sample(name + "_sum", labels, point.sum))
        buckets.append(_sample(name + "_count", labels, point.count))
    lines.append("".join(buckets))


def _only_samples(lines: list[str], names: Collection[str]) -> list[str]:
    """The sample lines whose sample name is in ``names`` (a histogram asked for by ``_bucket`` only)."""
    kept = []
    for chunk in lines:
        for line in chunk.splitlines(keepends=True):
            end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=len(line))
            if line[:end] in names:
                kept.append(line)
    return kept


# OpenMetrics 1.0 ------------------------------------------------------------------------------------------------

_UNITS: dict[tuple[str, Kind, str], str] = {}


def _unit_of(metric_name: str, kind: Kind, unit: str) -> str:
    """The Prometheus unit that :func:`prometheus_name` appended (``seconds``), or ``""``."""
    key = (metric_name, kind, unit)
    found = _UNITS.get(key)
    if found is None:
        if len(_UNITS) >= 4096:
            _UNITS.clear()
        bare = prometheus_name(metric_name, kind, "").removesuffix("_total")
        named = prometheus_name(metric_name, kind, unit).removesuffix("_total")
        found = _UNITS[key] = named[len(bare) + 1 :] if named != bare and named.startswith(bare + "_") else ""
    return found


def _escape_om_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_openmetrics(data: MetricsData, *, target_info: bool = True, names: Collection[str] | None = None) -> bytes:
    """Render ``data`` (cumulative) as OpenMetrics 1.0 text, ``# EOF`` included.

    Counters are a family without ``_total`` whose samples end in ``_total``; units are ``# UNIT``
    lines; the resource is the info family ``target``. Histograms whose buckets include a negative
    bound, or whose sum is negative or not finite, have no ``_sum`` and ``_count``: OpenMetrics
    allows a sum only where it is a counter (the ``le="+Inf"`` bucket still carries the count).
    Created timestamps are not exposed. ``names`` filters samples as in :func:`render`.
    """
    out: list[str] = []
    attributes = _target_info_attributes(data) if target_info else None
    if attributes and (names is None or "target_info" in names):
        out.append("# HELP target Target metadata\n# TYPE target info\n")
        out.append(_sample("target_info", _labels(attributes), 1))
    for name, (family, point_lists) in _families(data, names).items():
        kind = family.kind
        family_name = name.removesuffix("_total") if kind is Kind.COUNTER else name
        lines = family.lines
        for points in point_lists:
            _openmetrics_lines(name, kind, points, lines)
        if names is not None and kind is Kind.HISTOGRAM:
            lines = _only_samples(lines, names)
            if not lines:
                continue
        out.append(f"# HELP {family_name} {_escape_om_help(family.description)}\n")
        out.append(f"# TYPE {family_name} {_PROM_TYPE[kind]}\n")
        unit = _unit_of(family.metric_name, kind, family.unit)
        if unit and family_name.endswith("_" + unit):
            out.append(f"# UNIT {family_name} {unit}\n")
        out.extend(lines)
    out.append("# EOF\n")
    return "".join(out).encode("utf-8", "replace")  # a lone surrogate (from os.environ) becomes "?"


def _openmetrics_lines(name: str, kind: Kind, points: Sequence[Any], lines: list[str]) -> None:
    if kind is not Kind.HISTOGRAM:
        # Counter samples are `<family>_total`, the name text 0.0.4 uses too; an exemplar follows the value.
        for point in points:
            assert isinstance(point, NumberDataPoint)
            line = _sample(name, _labels(point.attributes), point.value)
            if kind is Kind.COUNTER and point.exemplars:
                line = line[:-1] + _exemplar_text(point.exemplars[-1]) + "\n"
            lines.append(line)
        return
    bounds: Any = None
    tails: tuple[str, ...] = ()
    negative_bound = False
    for point in points:
        assert isinstance(point, HistogramDataPoint)
        if point.explicit_bounds is not bounds:
            bounds = point.explicit_bounds
            tails = _bucket_tails(bounds)
            negative_bound = bool(bounds) and bounds[0] < 0
        with_sum = not negative_bound and point.sum >= 0 and math.isfinite(point.sum)
        labels = _labels(point.attributes, histogram=True)
        _histogram_lines(name, labels, point, lines, tails, with_sum=with_sum, exemplars=True)


EXEMPLAR_LABEL_CHARS = 128
"""Characters of label names and values an OpenMetrics exemplar may carry in all."""


def _exemplar_text(exemplar: Any) -> str:
    """`` # {trace_id="...",span_id="...",key="value"} <value> <timestamp>`` for an OpenTelemetry exemplar.

    Labels that would break the 128-character bound or repeat a name are left out (tradetel fits the
    attributes when it records them; this only guards exemplars from elsewhere).
    """
    parts = []
    room = EXEMPLAR_LABEL_CHARS
    names: set[str] = set()
    if exemplar.trace_id and exemplar.span_id:
        parts.append(f'trace_id="{exemplar.trace_id:032x}",span_id="{exemplar.span_id:016x}"')
        room -= len("trace_id") + 32 + len("span_id") + 16
        names.update(("trace_id", "span_id"))
    for key, value in (exemplar.filtered_attributes or {}).items():
        label = _name_of(key, False)[0]
        text = _label_text(value)
        if label in names or len(label) + len(text) > room:
            continue
        room -= len(label) + len(text)
        names.add(label)
        parts.append(f'{label}="{_escape_value(text)}"')
    at = int(exemplar.time_unix_nano)
    return f" # {{{','.join(parts)}}} {_number(exemplar.value)} {at // 1_000_000_000}.{at % 1_000_000_000:09d}"
