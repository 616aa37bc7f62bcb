"""Prometheus names of OpenTelemetry metrics: the unit suffix, ``_total`` and the ``_count`` rule.

These are the OpenTelemetry-to-Prometheus compatibility rules, as the
Collector and the SDK's own Prometheus exporter apply them, plus basis
points for prices. ``kind`` is a catalog :class:`~tradetel.catalog.Kind`
(or its value): this module imports nothing of tradetel, so the catalog can
name its instruments without an import cycle.
"""

from __future__ import annotations

import re

__all__ = ["prometheus_name", "prometheus_unit"]

# The OpenTelemetry → Prometheus unit table (the specification's, as the collector and the SDK's own
# Prometheus exporter apply it), plus basis points for prices.
_PROMETHEUS_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
    "[bp]": "basis_points",
    "bp": "basis_points",
}
_PROMETHEUS_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def _unit_text(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", text).strip("_")


def prometheus_unit(kind: str, unit: str) -> str:
    """The Prometheus unit of an OpenTelemetry unit (``s`` → ``seconds``): the metric name's suffix, or ``""``.

    Annotations in braces are dropped (``{order}`` → ``""``), rates spelled out
    (``By/s`` → ``bytes_per_second``) and ``1`` is ``ratio`` on gauges only.
    """
    unit = re.sub(r"\{[^}]*\}", "", unit)
    if unit == "1":
        return "ratio" if kind == "gauge" else ""
    suffix = _PROMETHEUS_UNITS.get(unit)
    if suffix is not None:
        return suffix
    top, slash, bottom = unit.partition("/")
    if slash and _unit_text(bottom):
        top = "" if top == "1" else _PROMETHEUS_UNITS.get(_unit_text(top), _unit_text(top))
        bottom = _PROMETHEUS_PER_UNITS.get(_unit_text(bottom), _unit_text(bottom))
        return f"{top}_per_{bottom}" if top else f"per_{bottom}"
    return _unit_text(unit)


def prometheus_name(full_name: str, kind: str, unit: str) -> str:
    """The Prometheus metric family name, following the OpenTelemetry compatibility rules.

    Dots become underscores, the unit is appended as a suffix (``s`` → ``seconds``;
    ``1`` → ``ratio`` for gauges; annotations in braces are dropped) and
    monotonic counters end in ``_total``. A gauge never ends in ``_count``, which
    Prometheus keeps for histograms: ``process.thread.count`` (``{thread}``) is
    ``process_threads``.
    """
    name = re.sub(r"[^a-zA-Z0-9_:]", "_", full_name)
    suffix = prometheus_unit(kind, unit)
    if suffix and not name.endswith("_" + suffix):
        name = f"{name}_{suffix}"
    if kind == "counter" and not name.endswith("_total"):
        name += "_total"
    if kind in ("gauge", "up_down_counter") and name.endswith("_count"):
        name = _counted_things(name.removesuffix("_count"), unit)
    return name


def _counted_things(base: str, unit: str) -> str:
    """``process_thread`` with unit ``{thread}`` → ``process_threads``; otherwise ``base`` as it is.

    Prometheus reserves the ``_count`` suffix for the series of histograms and summaries (promtool
    rejects it on a gauge), so a semantic-convention ``*.count`` up-down counter is named after
    what it counts, as Prometheus names such gauges (``process_open_fds``, ``go_threads``).
    """
    thing = re.sub(r"[^a-zA-Z0-9_]", "_", unit[1:-1]) if unit.startswith("{") and unit.endswith("}") else ""
    if thing and (base == thing or base.endswith("_" + thing)):
        return base + ("es" if thing.endswith(("s", "x", "ch", "sh")) else "s")
    return base
