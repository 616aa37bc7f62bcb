"""The fast path's contract with the OpenTelemetry SDK: checked at configure(), and a broken one falls back.

Each private name of ``tradetel._sdk.PRIVATE_NAMES`` is renamed in turn (as a
new SDK minor would rename it), then all at once; aggregations are given
``__slots__``; a called signature changes; a writer stops matching the SDK.
Every time the contract check must report it, ``configure()`` must select the
public path, count and log it once, and the exported data must equal the fast
path's for the same measurements (on an SDK where the fast path works at all).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import tradetel
from test_fastpath_equivalence import CATALOG, Step, dogstatsd_lines, fast_path, points, prometheus_samples
from tradetel import _sdk

SDK_VERSION = tuple(int(part) for part in importlib.metadata.version("opentelemetry-sdk").split(".")[:2])

# Every kind, bound and unbound, negative histogram values, folds, a TopN demotion and an overflow.
SEQUENCE = (
    [Step("fills", "call", i % 3, {"symbol": ("BTC", "ETH")[i % 2], "side": "buy", "venue": "a"}) for i in range(40)]
    + [Step("fills", "call", 1, {"venue": f"v{i}"}) for i in range(9)]
    + [Step("fills", "bind", 2, {"venue": "late"}), Step("fills", "reuse", 3, {})]
    + [Step("rejects", "call", 1, {"venue": "b", "reason": "Timeout"}) for _ in range(3)]
    + [Step("pending", "call", v, {"symbol": "BTC", "venue": "a"}) for v in (1, -2.5, 4)]
    + [Step("equity", "call", v, {"venue": "a"}) for v in (10, 10.5, -3)]
    + [Step("bare", "call", 1, {})]
    + [Step("slippage", "call", v, {"symbol": "BTC", "side": "long"}) for v in (-7.5, -2, 0, 0.5, 3, 12, -0.0)]
    + [Step("slippage", "bind", -1.25, {"symbol": "ETH"}), Step("slippage", "reuse", 4, {})]
)


@pytest.fixture(autouse=True)
def _fresh_contract() -> Iterator[None]:
    """Each test checks the contract afresh and leaves the real result behind."""
    _sdk.contract_problems(refresh=True)
    yield
    _sdk.contract_problems(refresh=True)


def _exported(**path: Any) -> tuple[tradetel.Telemetry, tuple[Any, ...]]:
    telemetry = tradetel.configure(catalog=CATALOG, exporters="none", env={}, **path)
    try:
        fast_path(telemetry, SEQUENCE)
        data = telemetry.collect()
        return telemetry, (points(data), prometheus_samples(data), dogstatsd_lines(data))
    finally:
        telemetry.shutdown()


@pytest.fixture(scope="module")
def reference() -> tuple[Any, ...]:
    """What the fast path (where this SDK supports it) exports for SEQUENCE."""
    _sdk.contract_problems(refresh=True)
    _, exported = _exported()
    return exported


def _falls_back(
    reference: tuple[Any, ...], caplog: pytest.LogCaptureFixture, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradetel import _health

    monkeypatch.setattr(_health, "_FAST_PATH_OFF_LOGGED", [])  # as in a fresh process
    problems = _sdk.contract_problems(refresh=True)
    if SDK_VERSION >= (1, 45):
        assert any(expected in problem for problem in problems), problems
    else:  # the contract fails anyway, at its first check
        assert problems
    caplog.set_level(logging.WARNING, logger="tradetel")
    telemetry, exported = _exported()
    assert telemetry.recording_path == "public"
    assert telemetry.sdk_problems == problems
    assert telemetry.health.fast_path_off_count == 1
    assert len([r for r in caplog.records if "fast path is off" in r.getMessage()]) == 1
    assert exported == reference
    caplog.clear()
    again, _ = _exported()
    assert again.health.fast_path_off_count == 1
    assert not [r for r in caplog.records if "fast path is off" in r.getMessage()], "logged once per process"


def test_the_fast_path_engages_where_the_contract_holds() -> None:
    """On SDK 1.45 and later the contract holds and configure() records on the fast path; before, it falls back."""
    problems = _sdk.contract_problems(refresh=True)
    with tradetel.configure(catalog=CATALOG, exporters="none", env={}) as telemetry:
        if SDK_VERSION >= (1, 45):
            assert problems == ()
            assert telemetry.recording_path == "fast"
            assert telemetry.health.fast_path_off_count == 0
        else:
            assert problems, "an SDK without series limits on views cannot keep the contract"
            assert telemetry.recording_path == "public"


def test_fast_path_false_selects_the_public_path_without_counting_a_fallback(reference: tuple[Any, ...]) -> None:
    """configure(fast_path=False) records on the public path, exports the same data, and is not a fallback."""
    telemetry, exported = _exported(fast_path=False)
    assert telemetry.recording_path == "public"
    assert telemetry.sdk_problems == ()
    assert telemetry.health.fast_path_off_count == 0
    assert exported == reference


@pytest.mark.parametrize("entry", _sdk.PRIVATE_NAMES, ids=str)
def test_each_renamed_private_name_turns_the_fast_path_off(
    entry: _sdk.PrivateName,
    reference: tuple[Any, ...],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A private name the SDK no longer has is reported, and the public path exports the fast path's data."""
    renamed = dataclasses.replace(entry, name=entry.name + "_renamed")
    monkeypatch.setattr(_sdk, "PRIVATE_NAMES", tuple(renamed if e == entry else e for e in _sdk.PRIVATE_NAMES))
    _falls_back(reference, caplog, entry.name + "_renamed", monkeypatch)


def test_all_private_names_renamed_at_once(
    reference: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With every private name gone at once the public path still exports the fast path's data."""
    renamed = tuple(dataclasses.replace(e, name=e.name + "_renamed") for e in _sdk.PRIVATE_NAMES)
    monkeypatch.setattr(_sdk, "PRIVATE_NAMES", renamed)
    _falls_back(reference, caplog, "_renamed", monkeypatch)


def test_aggregations_with_slots_turn_the_fast_path_off(
    reference: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Aggregations that gave up their __dict__ for __slots__ (a forked child could not reset them) fall back."""
    from opentelemetry.sdk.metrics._internal import aggregation

    for cls in aggregation._SumAggregation.__mro__[:-1]:
        if "__slots__" not in vars(cls):
            monkeypatch.setattr(cls, "__slots__", ("_lock", "_value"), raising=False)
    _falls_back(reference, caplog, "__slots__", monkeypatch)


def test_a_changed_signature_turns_the_fast_path_off(
    reference: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A called private method whose parameters changed is reported, and the public path takes over."""
    signatures = dict(_sdk._SIGNATURES)
    signatures[("match", "_get_or_create_aggregation")] = ("attributes", "aggr_key")
    monkeypatch.setattr(_sdk, "_SIGNATURES", signatures)
    _falls_back(reference, caplog, "_get_or_create_aggregation takes", monkeypatch)


def test_a_writer_that_no_longer_matches_the_sdk_turns_the_fast_path_off(
    reference: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When the fast path's update stops giving what the SDK's collection reports, the probe sees it."""
    original = _sdk.writer_for

    def writer_for(cls: type) -> Any:
        found = original(cls)
        # as if the SDK's sum aggregation had changed what its fields mean
        return _sdk.write_last_value if found is _sdk.write_sum else found

    monkeypatch.setattr(_sdk, "writer_for", writer_for)
    _falls_back(reference, caplog, "the probe collected", monkeypatch)


def test_import_and_configure_survive_a_missing_private_name() -> None:
    """Without the SDK's _OVERFLOW_KEY (the ImportError of a downgrade), tradetel imports, configures and records."""
    code = (
        "from opentelemetry.sdk.metrics._internal import _view_instrument_match\n"
        "vars(_view_instrument_match).pop('_OVERFLOW_KEY', None)\n"
        "import tradetel\n"
        "tel = tradetel.configure(exporters='none', env={})\n"
        "tel.trades.r_multiple.record(-1.5, symbol='EURUSD', strategy='breakout')\n"
        "print(tel.recording_path, tel.collect().resource_metrics[0].scope_metrics[0].metrics[0].name)\n"
        "tel.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRADETEL_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["public", "trading.trades.r_multiple"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "public"])
def test_a_forked_child_starts_clean_on_either_path(fast: bool) -> None:
    """After os.fork the child exports only what it records itself, on the fast and on the public path."""
    if not hasattr(os, "fork"):
        pytest.fail("this test needs os.fork")
    code = (
        "import json, os\n"
        "import tradetel\n"
        f"tel = tradetel.configure(exporters='none', env={{}}, fast_path={fast})\n"
        "fills = tel.orders.filled\n"
        "fills.add(5, exchange='binance', symbol='BTC-USD', side='buy')\n"
        "bound = tel.trades.r_multiple.bind(symbol='EURUSD', strategy='breakout')\n"
        "bound.record(-2.0)\n"
        "def ours(data):\n"
        "    out = {}\n"
        "    for rm in data.resource_metrics:\n"
        "        for sm in rm.scope_metrics:\n"
        "            for m in sm.metrics:\n"
        "                if m.name in ('trading.orders.filled', 'trading.trades.r_multiple'):\n"
        "                    p = m.data.data_points\n"
        "                    out[m.name] = [getattr(x, 'value', None) or [x.count, x.sum] for x in p]\n"
        "    return out\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    empty = ours(tel.collect())\n"
        "    fills.add(2, exchange='binance', symbol='BTC-USD', side='buy')\n"
        "    bound.record(3.0)\n"
        "    print(json.dumps({'child': [empty, ours(tel.collect()), tel.recording_path]}), flush=True)\n"
        "    os._exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(json.dumps({'parent': [ours(tel.collect()), os.waitstatus_to_exitcode(status)]}))\n"
        "tel.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRADETEL_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    import json

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    child = next(line["child"] for line in lines if "child" in line)
    parent = next(line["parent"] for line in lines if "parent" in line)
    path = "fast" if fast and SDK_VERSION >= (1, 45) else "public"
    assert child == [{}, {"trading.orders.filled": [2], "trading.trades.r_multiple": [[1, 3.0]]}, path]
    assert parent == [{"trading.orders.filled": [5], "trading.trades.r_multiple": [[1, -2.0]]}, 0]
