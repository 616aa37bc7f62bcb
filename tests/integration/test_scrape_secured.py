"""A real Prometheus scrapes the /metrics endpoint over HTTPS with basic auth, and gets nothing without them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import tradetel

if TYPE_CHECKING:
    from conftest import TlsFiles

pytestmark = pytest.mark.integration

USER, PASSWORD = "prometheus", "a long scrape password"
NEVER = "0001-01-01T00:00:00Z"


@pytest.fixture
def secured(tls_files: TlsFiles) -> Iterator[tradetel.Telemetry]:
    env = tls_files.prometheus_env(USER, PASSWORD)
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env=env, service_name="secured-bot") as tel:
        yield tel


def test_prometheus_scrapes_over_tls_with_basic_auth(
    secured: tradetel.Telemetry, tls_files: TlsFiles, prometheus_server: Callable[..., Any], workload: Any
) -> None:
    """With the CA and the credentials in its scrape config, Prometheus reads exact totals over HTTPS."""
    assert secured.prometheus_url is not None and secured.prometheus_url.startswith("https://127.0.0.1:")
    options = {
        "basic_auth": {"username": USER, "password": PASSWORD},
        "tls_config": {"ca_file": str(tls_files.cert)},
    }
    prom = prometheus_server({"secured": secured.prometheus_url}, scrape_options={"secured": options})
    workload.record(secured, 1)
    prom.wait_for_scrape("secured")
    workload.record(secured, 2)
    workload.wait_for_totals(prom, "secured")
    assert [labels["service_name"] for labels in prom.labels('target_info{job="secured"}')] == ["secured-bot"]


def test_prometheus_without_credentials_or_trust_gets_nothing(
    secured: tradetel.Telemetry,
    tls_files: TlsFiles,
    prometheus_server: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    """A wrong password or none is answered 401; without the CA the handshake fails first; no sample is stored."""
    secured.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    url = secured.prometheus_url
    assert url is not None
    trust = {"tls_config": {"ca_file": str(tls_files.cert)}}
    expected = {
        "wrong-password": ({"basic_auth": {"username": USER, "password": "wrong"}, **trust}, "401"),
        "no-credentials": (trust, "401"),
        "untrusting": ({"basic_auth": {"username": USER, "password": PASSWORD}}, "certificate"),
    }
    prom = prometheus_server(
        dict.fromkeys(expected, url), scrape_options={job: options for job, (options, _) in expected.items()}
    )

    def every_job_refused() -> bool:
        errors = {t["labels"]["job"]: t["lastError"] for t in prom.api("targets")["activeTargets"]}
        targets = {t["labels"]["job"]: t["lastScrape"] for t in prom.api("targets")["activeTargets"]}
        return all(targets.get(job, NEVER) != NEVER and text in errors[job] for job, (_, text) in expected.items())

    wait_until(every_job_refused, "every job's scrape refused for its reason", 30)
    assert len(prom.query("up == 0")) == len(expected)
    assert prom.query("trading_orders_filled_total") == []
