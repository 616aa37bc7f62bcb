"""Prometheus unit suffixes follow the OpenTelemetry table as the SDK's own Prometheus exporter applies it."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.prometheus._mapping import map_unit

from tradetel.catalog import DEFAULT_CATALOG, Kind, prometheus_name, prometheus_unit

UNITS = [
    *("d", "h", "min", "s", "ms", "us", "ns"),
    *("By", "KiBy", "MiBy", "GiBy", "TiBy", "KBy", "MBy", "GBy", "TBy"),
    *("m", "V", "A", "J", "W", "g", "Cel", "Hz", "%", ""),
    *("By/s", "m/s", "{packet}/s", "1/min", "{request}", "{cpu}", "km/h", "io/mo", "requests/w", "MiBy/d"),
    *("kWh", "foo.bar"),
]


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("kind", [Kind.COUNTER, Kind.UP_DOWN_COUNTER, Kind.GAUGE, Kind.HISTOGRAM])
def test_unit_suffix_matches_the_sdks_prometheus_exporter(kind: Kind, unit: str) -> None:
    """For every unit of the OpenTelemetry table, rates and annotations, the suffix is the stock exporter's."""
    assert prometheus_unit(kind, unit) == map_unit(unit)


def test_dimensionless_gauges_are_ratios_as_the_specification_says() -> None:
    """Unit 1 gives _ratio on gauges only (the stock exporter leaves it out everywhere, an open spec question)."""
    assert prometheus_unit(Kind.GAUGE, "1") == "ratio"
    assert prometheus_unit(Kind.COUNTER, "1") == prometheus_unit(Kind.HISTOGRAM, "1") == map_unit("1") == ""
    assert prometheus_name("system.cpu.utilization", Kind.GAUGE, "1") == "system_cpu_utilization_ratio"


def test_instrumentation_units_get_spelled_out_names() -> None:
    """Units instrumentation packages use become the names Prometheus users know."""
    assert prometheus_name("device.temperature", Kind.GAUGE, "Cel") == "device_temperature_celsius"
    assert prometheus_name("system.network.io", Kind.COUNTER, "By") == "system_network_io_bytes_total"
    assert prometheus_name("net.rate", Kind.GAUGE, "By/s") == "net_rate_bytes_per_second"
    assert prometheus_name("trading.orders.slippage", Kind.HISTOGRAM, "[bp]") == "trading_orders_slippage_basis_points"


def test_catalog_names_are_unchanged_by_the_table() -> None:
    """Every catalog unit is one of s, By, 1, [bp] or an annotation, so the table leaves catalog names as they were."""
    assert {spec.unit for spec in DEFAULT_CATALOG.values()} - {"s", "By", "1", "[bp]"} <= {
        spec.unit for spec in DEFAULT_CATALOG.values() if spec.unit.startswith("{")
    }
