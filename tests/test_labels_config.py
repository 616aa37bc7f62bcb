"""Label policies and limits from config files (TOML and YAML) and from policy_from_config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tradetel.errors import ConfigurationError
from tradetel.labels import (
    ERROR_TYPE,
    NO_TRADE_REASON,
    REJECTION_REASON,
    Categorize,
    ClientAddress,
    Free,
    OneOf,
    StatusClass,
    TopN,
    policy_from_config,
)
from tradetel.testing import capture

TOML = """\
service_name = "grid-bot"
cardinality_limit = 500

[instruments."orders.filled"]
cardinality_limit = 4

[instruments."orders.filled".attributes.symbol]
policy = "top_n"
n = 2

[instruments."orders.filled".attributes.side]
policy = "one_of"
values = ["buy", "sell"]
fallback = "unknown"

[instruments."orders.latency"]
buckets = [0.5, 1, 5]

[instruments."security.rate_limited".attributes.client]
policy = "client_address"
ipv4_prefix = 16

[instruments."orders.rejected".attributes.reason]
policy = "categorize"
fallback = "unmapped"
rules = { funds = ["insufficient", "balance"], risk = ["risk", "exposure"] }

[instruments."exchange.errors"]
keys = ["exchange", "error_type"]
"""

YAML = """\
service_name: grid-bot
cardinality_limit: 500
instruments:
  orders.filled:
    cardinality_limit: 4
    attributes:
      symbol: {policy: top_n, n: 2}
      side:
        policy: one_of
        values: [buy, sell]
        fallback: unknown
  orders.latency:
    buckets: [0.5, 1, 5]
  security.rate_limited:
    attributes:
      client: {policy: client_address, ipv4_prefix: 16}
  orders.rejected:
    attributes:
      reason:
        policy: categorize
        fallback: unmapped
        rules:
          funds: [insufficient, balance]
          risk: [risk, exposure]
  exchange.errors:
    keys: [exchange, error_type]
"""


@pytest.fixture(params=[("tradetel.toml", TOML), ("tradetel.yaml", YAML)], ids=["toml", "yaml"])
def config_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name, text = request.param
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_sets_policies_limits_buckets_and_keys(config_file: Path) -> None:
    """A TOML or YAML file sets attribute policies, the series limit, buckets and the key allow-list per instrument."""
    with capture(config_file=str(config_file)) as cap:
        tel = cap.telemetry
        assert tel.settings.cardinality_limit == 500
        filled = tel.catalog["orders.filled"]
        assert filled.cardinality_limit == 4
        policies = {a.key: a.policy for a in filled.attributes}
        assert policies["symbol"] == TopN(n=2)
        assert policies["side"] == OneOf(("buy", "sell"), fallback="unknown")

        for symbol in ("BTC-USD", "ETH-USD", "junk-1", "junk-2"):
            tel.orders.filled.add(1, symbol=symbol, side="hold")
        assert cap.value("orders.filled", symbol="BTC-USD", side="unknown") == 1
        assert cap.value("orders.filled", symbol="other") == 2

        for i in range(10):
            tel.orders.filled.add(1, symbol="BTC-USD", side="buy", exchange=f"venue-{i}")
        series = cap.series("orders.filled")
        assert len(series) == 4 + 1  # the limit from the file, plus the overflow series
        assert sum(v for _, v in series) == 14

        tel.orders.latency.record(0.7, exchange="binance")
        assert cap.histogram("orders.latency").bounds == (0.5, 1.0, 5.0)

        tel.security.rate_limited.add(1, client="203.0.113.77")
        assert cap.value("security.rate_limited", client="203.0.0.0/16") == 1

        tel.orders.rejected.add(1, reason="Insufficient balance")
        tel.orders.rejected.add(1, reason="exchange down")
        assert cap.value("orders.rejected", reason="funds") == 1
        assert cap.value("orders.rejected", reason="unmapped") == 1

        tel.exchange.errors.add(1, exchange="binance", endpoint="fetch_ticker", error_type="RequestTimeout")
        assert cap.series("exchange.errors") == [({"exchange": "binance", "error_type": "timeout"}, 1)]


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ('[instruments."orders.filled".attributes.symbol]\npolicy = "top_n"\nn = 0\n', "TopN.n"),
        ('[instruments."orders.filled".attributes.order_id]\npolicy = "free"\n', "attributes"),
        ('[instruments."orders.filled"]\ncardinality_limit = -3\n', "instruments.orders.filled.cardinality_limit"),
        ('[instruments."orders.filled"]\nbuckets = [1, 2]\n', "instruments.orders.filled.buckets"),
        ('[instruments."nope.nope"]\ncardinality_limit = 3\n', "instruments.nope.nope"),
    ],
)
def test_bad_config_file_entries_fail_at_configure(tmp_path: Path, text: str, setting: str) -> None:
    """A bad policy, key, limit, bucket list or instrument name in the file fails configure() naming it."""
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as info, capture(config_file=str(path)):
        pass
    assert setting in info.value.setting


POLICY_CASES: list[tuple[object, object]] = [
    ("rejection_reason", REJECTION_REASON),
    ("no_trade_reason", NO_TRADE_REASON),
    ("error_type", ERROR_TYPE),
    ("status_class", StatusClass()),
    ("client_address", ClientAddress()),
    ("free", Free()),
    ("top_n", TopN()),
    ({"policy": "free", "max_length": 16}, Free(max_length=16)),
    ({"policy": "top_n", "n": 5, "fallback": "tail", "tracked": 64}, TopN(n=5, fallback="tail", tracked=64)),
    (
        {"policy": "one_of", "values": ["a", "b"], "aliases": {"x": "a"}},
        OneOf(("a", "b"), aliases={"x": "a"}),
    ),
    ({"policy": "client_address", "ipv4_prefix": 16, "ipv6_prefix": 32}, ClientAddress(16, 32)),
    (
        {"policy": "client_address", "hash_key": "0123456789abcdef"},
        ClientAddress(hash_key=b"0123456789abcdef"),
    ),
    (
        {"policy": "categorize", "rules": {"a": ["x", "y z"]}, "fallback": "none"},
        Categorize((("a", ("x", "y z")),), fallback="none"),
    ),
    (TopN(n=3), TopN(n=3)),
]


@pytest.mark.parametrize(("raw", "expected"), POLICY_CASES)
def test_policy_from_config_forms(raw: object, expected: object) -> None:
    """Names, tables with fields and policy objects all give the intended policy."""
    assert policy_from_config("instruments.x.attributes.k", raw) == expected


BAD_POLICIES: list[Any] = [
    "top_k",
    42,
    None,
    ["top_n"],
    {"n": 5},
    {"policy": "top_n", "size": 5},
    {"policy": "one_of", "values": "buy,sell"},
    {"policy": "one_of"},
    {"policy": "categorize", "rules": ["x"]},
    {"policy": "categorize"},
    {"policy": "status_class", "n": 1},
    {"policy": "rejection_reason", "fallback": "x"},
    {"policy": "free", "max_length": 0},
]


@pytest.mark.parametrize("raw", BAD_POLICIES)
def test_policy_from_config_rejects_with_the_setting_name(raw: object) -> None:
    """Unknown names, missing or unknown fields and bad values raise a ConfigurationError naming the setting."""
    with pytest.raises(ConfigurationError) as info:
        policy_from_config("instruments.orders.filled.attributes.symbol", raw)
    assert info.value.setting.startswith("instruments.orders.filled.attributes.symbol")
    assert "expected" in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"policy": "client_address", "hash_key": "too-short-key"},
        {"policy": "client_address", "hash_key": "0123456789abcdef-secret", "ipv4_prefix": 99},
        {"policy": "client_address", "hash_key": "0123456789abcdef-secret", "colour": "red"},
    ],
)
def test_hash_key_never_appears_in_errors(raw: dict[str, object]) -> None:
    """A bad client_address table raises without showing the hash key."""
    with pytest.raises(ConfigurationError) as info:
        policy_from_config("instruments.security.rate_limited.attributes.client", raw)
    secret = str(raw["hash_key"])
    assert secret not in str(info.value)
    assert secret not in repr(info.value.value)
