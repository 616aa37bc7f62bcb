"""The operator artefacts: generated from the catalog, committed as generated, and checked by promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradetel import DEFAULT_CATALOG, Catalog, CatalogError, ConfigurationError, InstrumentSpec, Kind
from tradetel.cli import main
from tradetel.ops import (
    ALERTMANAGER,
    DATADOG_DASHBOARD,
    DATADOG_MONITORS,
    RULE_TESTS,
    RULES,
    SLO_TESTS,
    alerts,
    artefacts,
    generate,
    load_objectives,
)
from tradetel.ops._alertmanager import RECEIVERS
from tradetel.ops._dashboards import dashboards, panel_specs
from tradetel.ops._model import Names, Objectives
from tradetel.ops._rules import BURN_WINDOWS, slos

ROOT = Path(__file__).resolve().parents[1]
OPS = ROOT / "ops"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: scripts/test installs the Debian prometheus package")
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _rules(text: str) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def test_committed_artefacts_are_what_the_command_generates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ops/ and docs/runbooks.md equal `tradetel ops generate --out ops --runbooks docs/runbooks.md` (regenerate)."""
    out = tmp_path / "ops"
    assert main(["ops", "generate", "--out", str(out), "--runbooks", str(tmp_path / "runbooks.md"),
                 "--runbook-url", "docs/runbooks.md"]) == 0  # fmt: skip
    generated = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    committed = sorted(path.relative_to(OPS) for path in OPS.rglob("*") if path.is_file() and path.suffix != ".md")
    assert generated == committed
    for relative in generated:
        assert (out / relative).read_text() == (OPS / relative).read_text(), f"ops/{relative} is stale"
    assert (tmp_path / "runbooks.md").read_text() == (ROOT / "docs" / "runbooks.md").read_text()
    assert str(out / RULES) in capsys.readouterr().out


def test_promtool_accepts_the_rules_and_every_unit_test_passes() -> None:
    """`promtool check rules` and `promtool test rules` (every alert both ways, every burn-rate pair) succeed."""
    checked = _promtool("check", "rules", RULES, cwd=OPS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # One file per run: promtool 2.42 carries the first file's evaluation interval into the next one.
    for tests in (RULE_TESTS, SLO_TESTS):
        tested = _promtool("test", "rules", tests, cwd=OPS)
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert "SUCCESS" in tested.stdout


def test_the_unit_tests_catch_an_alert_that_never_fires(tmp_path: Path) -> None:
    """With every alert expression replaced by one that never fires, promtool's tests fail: they assert firing."""
    rules = yaml.safe_load((OPS / RULES).read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["expr"] = "vector(1) == 0"
    (tmp_path / "prometheus").mkdir()
    (tmp_path / RULES).write_text(yaml.safe_dump(rules))
    shutil.copy(OPS / RULE_TESTS, tmp_path / RULE_TESTS)
    tested = _promtool("test", "rules", RULE_TESTS, cwd=tmp_path)
    assert tested.returncode != 0
    report = tested.stdout + tested.stderr
    fires = {alert.name for alert in alerts(Objectives(), Names(DEFAULT_CATALOG))}
    assert [name for name in fires if f"name: {name} fires," not in report] == []


def test_every_alert_has_a_firing_and_a_quiet_case_and_every_burn_pair_is_tested() -> None:
    """The promtool file checks each alert once firing and once quiet, and each SLO window pair above and below."""
    tests = yaml.safe_load((OPS / RULE_TESTS).read_text())["tests"]
    by_name = {test["name"]: test["alert_rule_test"][0] for test in tests}
    names = {rule["alert"] for rule in _rules((OPS / RULES).read_text()) if "alert" in rule} - {"SLOErrorBudgetBurn"}
    assert names == {alert.name for alert in alerts(Objectives(), Names(DEFAULT_CATALOG))}
    assert len(names) >= 15
    for name in names:
        assert by_name[f"{name} fires"]["exp_alerts"], name
        assert by_name[f"{name} stays quiet"]["exp_alerts"] == [], name
    slo_test = yaml.safe_load((OPS / SLO_TESTS).read_text())["tests"][0]
    jobs = {series["series"].split('job="')[1].split('"')[0] for series in slo_test["input_series"]}
    firing = {
        (alert["exp_labels"]["job"], alert["exp_labels"]["long_window"])
        for alert in slo_test["alert_rule_test"][0]["exp_alerts"]
    }
    for slo in slos(Objectives(), Names(DEFAULT_CATALOG)):
        for index, pair in enumerate(slo.windows()):
            assert (f"{slo.name}-{index}-above", _window(pair.long)) in firing
            assert (f"{slo.name}-{index}-below", _window(pair.long)) not in firing
            assert {f"{slo.name}-{index}-above", f"{slo.name}-{index}-below"} <= jobs


def _window(seconds: int) -> str:
    from tradetel.ops._model import duration

    return duration(seconds)


def test_burn_rate_pairs_that_cannot_fire_are_left_out() -> None:
    """An 85 % objective has a 0.15 budget: 14.4x would need an error ratio of 2.16, so that pair is not generated."""
    fill = next(slo for slo in slos(Objectives(), Names(DEFAULT_CATALOG)) if slo.name == "fill_ratio")
    assert [pair.factor for pair in fill.windows()] == [6.0, 3.0, 1.0]
    ack = next(slo for slo in slos(Objectives(), Names(DEFAULT_CATALOG)) if slo.name == "order_ack_latency")
    assert ack.windows() == BURN_WINDOWS


def test_every_alert_names_its_instruments_and_links_its_runbook_section() -> None:
    """Each alert's annotations name the catalog instruments it reads and a runbook anchor that exists."""
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    for rule in _rules((OPS / RULES).read_text()):
        if "alert" not in rule:
            continue
        annotations = rule["annotations"]
        for name in annotations["instruments"].split(", "):
            assert name in DEFAULT_CATALOG, (rule["alert"], name)
        assert annotations["runbook_url"].startswith("docs/runbooks.md#")
        assert f'<a id="{annotations["runbook_url"].split("#")[1]}"></a>' in runbooks


def test_a_name_missing_from_the_catalog_fails_generation() -> None:
    """Renaming an instrument the artefacts read makes generation raise, naming it, instead of a dead panel."""
    from dataclasses import replace

    specs = [
        replace(spec, name="orders.fills") if name == "orders.filled" else spec
        for name, spec in DEFAULT_CATALOG.items()
    ]
    renamed = Catalog(specs)
    with pytest.raises(CatalogError, match=r"orders\.filled"):
        artefacts(renamed)


def test_namespace_and_extra_instruments_get_their_own_artefacts(tmp_path: Path) -> None:
    """Under namespace acme no artefact names trading_*, and an instrument the user added gets a panel."""
    grid = InstrumentSpec("grid.levels_filled", Kind.COUNTER, "{level}", "Grid levels filled.")
    files = generate(tmp_path, DEFAULT_CATALOG.extend([grid]).with_namespace("acme"))
    texts = {path.name: path.read_text() for path in files}
    assert not any("trading_" in text for text in texts.values())
    assert "acme_orders_filled_total" in texts["tradetel.rules.yml"]
    custom = json.loads(texts["custom.json"])
    exprs = [target["expr"] for panel in custom["panels"] for target in panel.get("targets", [])]
    assert exprs == ['sum (rate(acme_grid_levels_filled_total{job=~"$job",instance=~"$instance"}[$__rate_interval]))']


def test_objectives_come_from_the_config_file_then_overrides(tmp_path: Path) -> None:
    """[ops] in the config file and --set change the thresholds; a bad value names the key and the accepted form."""
    config = tmp_path / "tradetel.toml"
    config.write_text("[ops]\nfill_ratio = 0.9\nopen_positions = 3\n")
    objectives = load_objectives(config, {"open_positions": "8"})
    assert (objectives.fill_ratio, objectives.open_positions) == (0.9, 8)
    rules = _rules(artefacts(objectives=objectives)[RULES])
    positions = next(rule for rule in rules if rule.get("alert") == "OpenPositionsAboveLimit")
    assert positions["expr"].endswith("> 8")
    with pytest.raises(ConfigurationError, match=r"ops\.fill_ratio.*between 0 and 1"):
        load_objectives(None, {"fill_ratio": "1.5"})
    with pytest.raises(ConfigurationError, match=r"ops\.fill_rate.*one of"):
        load_objectives(None, {"fill_rate": "0.9"})
    with pytest.raises(ConfigurationError, match=r"ops\.order_ack_seconds.*bucket bounds"):
        artefacts(objectives=load_objectives(None, {"order_ack_seconds": "0.7"}))


def test_dashboards_load_through_the_foundation_sdk_model_with_catalog_units() -> None:
    """Each committed dashboard parses into grafana-foundation-sdk's Dashboard; units follow the catalog."""
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    units: dict[str, str] = {}
    for path in sorted((OPS / "grafana").glob("*.json")):
        data = json.loads(path.read_text())
        board = Dashboard.from_json(data)
        assert board.title and board.uid == "tradetel-" + path.stem
        variables = [variable["name"] for variable in data["templating"]["list"]]
        assert variables == ["datasource", "job", "instance", "exchange", "symbol", "strategy"]
        ids = [panel["id"] for panel in data["panels"]]
        assert len(ids) == len(set(ids))
        for panel in data["panels"]:
            if panel["type"] != "row":
                units[panel["title"]] = panel["fieldConfig"]["defaults"]["unit"]
    assert units["Order latency"] == "s"
    assert units["Slippage"] == "suffix: bp"
    assert units["Exposure"] == "percentunit"
    assert units["Fills by side"] == "ops"


def test_dashboard_filters_apply_only_to_labels_the_instrument_has() -> None:
    """$exchange filters order series but not market data lag, which has no exchange label."""
    board = dashboards(DEFAULT_CATALOG, Objectives())["platform"]
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    lag = next(expr for expr in exprs if "market_data_lag" in expr)
    assert 'job=~"$job",instance=~"$instance"' in lag and "$exchange" not in lag
    volume = next(expr for expr in exprs if "orders_notional" in expr)
    assert 'exchange=~"$exchange",symbol=~"$symbol"' in volume


def test_panels_cover_reference_004_and_the_execution_view() -> None:
    """The operations dashboard has every panel reference 004 recommends, plus order latency and slippage."""
    titles = {panel.title for _, panel in panel_specs(Objectives())["operations"]}
    assert {
        "Exposure",
        "Positions and pending orders",
        "Fill ratio",
        "Fills by side",
        "Top rejection reasons",
        "Breaker states",
        "Consecutive errors",
        "Top no-trade reasons",
        "Cycles per minute",
        "Cycle duration",
        "Stage timings",
        "Order latency",
        "Slippage",
        "Partial fills and cancels",
    } <= titles


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool not found: scripts/test installs the Debian prometheus-alertmanager package")
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60)


def test_alertmanager_example_is_valid_and_routes_every_severity() -> None:
    """`amtool check-config` accepts the example, and each severity the rules use reaches its receiver."""
    config = str(OPS / ALERTMANAGER)
    checked = _amtool("check-config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    severities = {rule["labels"]["severity"] for rule in _rules((OPS / RULES).read_text()) if "alert" in rule}
    assert severities == set(RECEIVERS)
    for severity in sorted(severities):
        routed = _amtool("config", "routes", "test", f"--config.file={config}", f"severity={severity}", "alertname=X")
        assert routed.stdout.strip() == RECEIVERS[severity], (severity, routed.stdout, routed.stderr)


def _datadog_model(body: Any, model: Any) -> Any:
    from datadog_api_client import Configuration
    from datadog_api_client.model_utils import validate_and_convert_types

    return validate_and_convert_types(body, (model,), ["body"], True, True, Configuration())


def test_datadog_dashboard_and_monitors_validate_with_datadogs_own_models() -> None:
    """Every body parses into datadog-api-client's Dashboard and Monitor models with nothing left unparsed."""
    from datadog_api_client.v1.model.dashboard import Dashboard
    from datadog_api_client.v1.model.monitor import Monitor

    dashboard = json.loads((OPS / DATADOG_DASHBOARD).read_text())
    assert _datadog_model(dashboard, Dashboard)._unparsed is False
    monitors = json.loads((OPS / DATADOG_MONITORS).read_text())
    assert len(monitors) == 10
    for monitor in monitors:
        assert _datadog_model(monitor, Monitor)._unparsed is False, monitor["name"]
    broken = json.loads(json.dumps(dashboard))
    broken["widgets"][0]["definition"]["type"] = "time_series"  # a typo DataDog's API would refuse
    assert _datadog_model(broken, Dashboard)._unparsed is True
