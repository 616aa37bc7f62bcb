"""The public surface, pinned: every public module's ``__all__``, and every import path of 0.1 and of the docs.

Changing what a module exports is a decision: update the pinned list here in
the same commit. A public module is any module of the package whose dotted
path has no part starting with an underscore.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import tradetel

ROOT = Path(__file__).resolve().parent.parent

PUBLIC: dict[str, list[str]] = {
    "tradetel": [
        "DEFAULT_CATALOG",
        "Attribute",
        "Catalog",
        "CatalogError",
        "ConfigurationError",
        "InstrumentSpec",
        "InvalidAttributeError",
        "InvalidValueError",
        "Kind",
        "MeasurementError",
        "SignalRejected",
        "Telemetry",
        "TradetelError",
        "__version__",
        "after",
        "configure",
        "count_exceptions",
        "counted",
        "exchange_call",
        "exemplar",
        "get_default",
        "in_flight",
        "instrument_ccxt",
        "instrument_methods",
        "order_cancel",
        "order_placement",
        "set_default",
        "signal_handler",
        "strategy_cycle",
        "strategy_stage",
        "timed",
        "trade_close",
    ],
    "tradetel.catalog": [
        "DEFAULT_CATALOG",
        "Attribute",
        "Catalog",
        "InstrumentSpec",
        "Kind",
        "prometheus_name",
        "prometheus_unit",
    ],
    "tradetel.cli": ["main"],
    "tradetel.config": [
        "SETTINGS",
        "DogStatsdSettings",
        "OtlpSettings",
        "PrometheusSettings",
        "Secret",
        "Settings",
        "load_settings",
    ],
    "tradetel.decorators": [
        "Call",
        "Instrumentation",
        "OrderInfo",
        "SignalRejected",
        "TradeInfo",
        "after",
        "ccxt_order",
        "count_exceptions",
        "counted",
        "error_type",
        "exchange_call",
        "in_flight",
        "order_cancel",
        "order_placement",
        "signal_handler",
        "strategy_cycle",
        "strategy_stage",
        "timed",
        "trade_close",
        "trade_result",
    ],
    "tradetel.errors": [
        "CatalogError",
        "ConfigurationError",
        "InvalidAttributeError",
        "InvalidValueError",
        "MeasurementError",
        "TradetelError",
    ],
    "tradetel.exporters": [],
    "tradetel.exporters.base": ["ExportFailure", "ExporterHooks", "PushExporter"],
    "tradetel.exporters.console": ["ConsoleExporter"],
    "tradetel.exporters.dogstatsd": ["DogStatsdExporter", "DogStatsdSerializer", "metric_name", "sample_rate", "tag"],
    "tradetel.exporters.otlp": ["OtlpExporter", "TemporalityConverter", "failure_reason"],
    "tradetel.exporters.prometheus": [
        "CONTENT_TYPE",
        "MAX_CONNECTIONS",
        "OPENMETRICS_CONTENT_TYPE",
        "PrometheusServer",
        "asgi_app",
        "render",
        "render_openmetrics",
        "wsgi_app",
    ],
    "tradetel.exporters.prometheus_client": ["RegistrySource", "TradetelCollector", "family_names"],
    "tradetel.gunicorn": ["post_fork", "post_worker_init", "pre_fork", "worker_exit", "worker_index"],
    "tradetel.instruments": ["BoundSeries", "Counter", "Gauge", "Histogram", "Instrument", "UpDownCounter"],
    "tradetel.labels": [
        "ERROR_TYPE",
        "NO_TRADE_REASON",
        "REJECTION_REASON",
        "Categorize",
        "ClientAddress",
        "Free",
        "LabelPolicy",
        "Normalizer",
        "OneOf",
        "StatusClass",
        "TopN",
        "policy_from_config",
        "to_text",
    ],
    "tradetel.ops": ["Objectives", "alerts", "generate", "load_objectives", "rule_groups", "rule_tests", "slos"],
    "tradetel.orders": ["FINAL_STATES", "OrderTracker"],
    "tradetel.otel_global": ["install_global_meter_provider", "installed_telemetry", "port_taken_hint"],
    "tradetel.retrofit": ["Instrumented", "instrument_ccxt", "instrument_methods"],
    "tradetel.runtime": [
        "EVENT_LOOP_LAG",
        "EVENT_LOOP_LAG_BUCKETS",
        "RUNTIME_METRICS",
        "EventLoopWatch",
        "RuntimeMetric",
        "register_runtime_metrics",
        "watch_event_loop",
    ],
    "tradetel.telemetry": ["Telemetry", "configure", "get_default", "set_default"],
    "tradetel.testing": ["Capture", "HistogramValue", "capture"],
    "tradetel.views": ["OVERFLOW_ATTRIBUTE", "apply_overrides", "build_views", "series_bound", "series_limit"],
}
"""Each public module's ``__all__``, in its order."""

RELEASE_0_1: dict[str, list[str]] = {
    "tradetel": [
        "Attribute",
        "Catalog",
        "CatalogError",
        "ConfigurationError",
        "DEFAULT_CATALOG",
        "InstrumentSpec",
        "InvalidAttributeError",
        "InvalidValueError",
        "Kind",
        "MeasurementError",
        "SignalRejected",
        "Telemetry",
        "TradetelError",
        "__version__",
        "after",
        "configure",
        "count_exceptions",
        "counted",
        "exchange_call",
        "get_default",
        "in_flight",
        "instrument_ccxt",
        "instrument_methods",
        "order_cancel",
        "order_placement",
        "set_default",
        "signal_handler",
        "strategy_cycle",
        "strategy_stage",
        "timed",
        "trade_close",
    ],
    "tradetel.catalog": [
        "Attribute",
        "Catalog",
        "DEFAULT_CATALOG",
        "InstrumentSpec",
        "Kind",
        "prometheus_name",
        "prometheus_unit",
    ],
    "tradetel.cli": ["main"],
    "tradetel.config": [
        "DogStatsdSettings",
        "OtlpSettings",
        "PrometheusSettings",
        "SETTINGS",
        "Secret",
        "Settings",
        "load_settings",
    ],
    "tradetel.decorators": [
        "Call",
        "Instrumentation",
        "OrderInfo",
        "SignalRejected",
        "TradeInfo",
        "after",
        "ccxt_order",
        "count_exceptions",
        "counted",
        "error_type",
        "exchange_call",
        "in_flight",
        "order_cancel",
        "order_placement",
        "signal_handler",
        "strategy_cycle",
        "strategy_stage",
        "timed",
        "trade_close",
        "trade_result",
    ],
    "tradetel.errors": [
        "CatalogError",
        "ConfigurationError",
        "InvalidAttributeError",
        "InvalidValueError",
        "MeasurementError",
        "TradetelError",
    ],
    "tradetel.exporters": [],
    "tradetel.exporters.console": [],
    "tradetel.exporters.dogstatsd": ["DogStatsdExporter", "DogStatsdSerializer", "metric_name", "sample_rate", "tag"],
    "tradetel.exporters.otlp": ["OtlpExporter", "TemporalityConverter", "failure_reason"],
    "tradetel.exporters.prometheus": [
        "CONTENT_TYPE",
        "MAX_CONNECTIONS",
        "OPENMETRICS_CONTENT_TYPE",
        "PrometheusServer",
        "asgi_app",
        "render",
        "render_openmetrics",
        "wsgi_app",
    ],
    "tradetel.exporters.prometheus_client": ["RegistrySource", "TradetelCollector", "family_names"],
    "tradetel.labels": [
        "Categorize",
        "ClientAddress",
        "ERROR_TYPE",
        "Free",
        "LabelPolicy",
        "NO_TRADE_REASON",
        "Normalizer",
        "OneOf",
        "REJECTION_REASON",
        "StatusClass",
        "TopN",
        "policy_from_config",
        "to_text",
    ],
    "tradetel.ops": ["Objectives", "alerts", "generate", "load_objectives", "rule_groups", "rule_tests", "slos"],
    "tradetel.orders": ["FINAL_STATES", "OrderTracker"],
    "tradetel.otel_global": ["install_global_meter_provider", "installed_telemetry", "port_taken_hint"],
    "tradetel.retrofit": ["Instrumented", "instrument_ccxt", "instrument_methods"],
    "tradetel.runtime": [
        "EVENT_LOOP_LAG",
        "EVENT_LOOP_LAG_BUCKETS",
        "EventLoopWatch",
        "RUNTIME_METRICS",
        "RuntimeMetric",
        "register_runtime_metrics",
        "watch_event_loop",
    ],
    "tradetel.telemetry": ["Telemetry", "configure", "get_default", "set_default"],
    "tradetel.testing": ["Capture", "HistogramValue", "capture"],
    "tradetel.views": [
        "OVERFLOW_ATTRIBUTE",
        "apply_overrides",
        "build_views",
        "cardinality_markdown",
        "series_bound",
        "series_limit",
    ],
}
"""What each public module of tradetel 0.1.0 exported; all of it must stay importable from the same path."""


def _public_modules() -> list[str]:
    found = ["tradetel"]
    for module in pkgutil.walk_packages(tradetel.__path__, "tradetel."):
        if not any(part.startswith("_") for part in module.name.split(".")):
            found.append(module.name)
    return sorted(found)


def test_every_public_module_is_pinned() -> None:
    """The public modules found in the package are exactly the ones pinned here (a new one must be pinned)."""
    assert _public_modules() == sorted(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_all_is_pinned(name: str) -> None:
    """The module's __all__ equals its pinned list, without duplicates."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == PUBLIC[name]
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_exported_name_resolves(name: str) -> None:
    """Every name in the module's __all__ is an attribute of the module (a star import would not fail)."""
    module = importlib.import_module(name)
    missing = [attribute for attribute in module.__all__ if not hasattr(module, attribute)]
    assert missing == []


@pytest.mark.parametrize("name", sorted(RELEASE_0_1))
def test_release_0_1_import_paths_still_work(name: str) -> None:
    """Every name tradetel 0.1.0 exported from a module is still importable from that module."""
    module = importlib.import_module(name)
    missing = [attribute for attribute in RELEASE_0_1[name] if not hasattr(module, attribute)]
    assert missing == []


_FROM_IMPORT = re.compile(r"^\s*from (tradetel[\w.]*) import (\([^)]*\)|[^\n#]+)", re.M)
_IMPORT = re.compile(r"^\s*import (tradetel[\w.]*)", re.M)


def _documented_imports() -> list[tuple[str, str, str]]:
    """(file, module, name) for every ``from tradetel... import`` in the docs, the README and the examples."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "examples").glob("*.py"))]
    found = []
    for path in files:
        text = path.read_text()
        for module, names in _FROM_IMPORT.findall(text):
            for name in names.strip("()").replace("\n", " ").split(","):
                name = name.split(" as ")[0].strip()
                if name:
                    found.append((path.name, module, name))
        found += [(path.name, module, "") for module in _IMPORT.findall(text)]
    return found


def test_documented_import_paths_work() -> None:
    """Every import of tradetel written in the docs, the README and the examples resolves."""
    documented = _documented_imports()
    assert len(documented) > 50
    broken = []
    for where, module_name, name in documented:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            broken.append(f"{where}: {module_name}")
            continue
        if name and not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ImportError:
                broken.append(f"{where}: {module_name}.{name}")
    assert broken == []


def test_handle_and_exporter_types_are_the_ones_used() -> None:
    """The public handle and exporter types are the very classes tradetel builds and raises, not copies."""
    from tradetel import _instruments, _pipeline
    from tradetel.exporters import base
    from tradetel.instruments import BoundSeries, Counter, Gauge, Histogram, Instrument, UpDownCounter

    assert (Counter, UpDownCounter, Gauge, Histogram) == tuple(_instruments.HANDLE_TYPES.values())
    assert Instrument is _instruments.Instrument and BoundSeries is _instruments.BoundSeries
    assert base.ExportFailure is _pipeline.ExportFailure and base.PushExporter is _pipeline.PushExporter
