"""Table-driven tests of every label normaliser: canonical values, Unicode, empty, very long and separator values."""

from __future__ import annotations

import enum
import ipaddress
from http import HTTPStatus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradetel.catalog import DEFAULT_CATALOG
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
    to_text,
)

LONG = "x" * 10_000
SEPARATORS = 'a|b,c#d:e"f\ng'


class Side(enum.Enum):
    BUY = "buy"


def _policy(name: str, key: str) -> object:
    (attribute,) = (a for a in DEFAULT_CATALOG[name].attributes if a.key == key)
    return attribute.policy


# --- Free --------------------------------------------------------------------------------------------

FREE_CASES = [
    ("BTC-USD", "BTC-USD", 0),
    ("", "", 0),
    ("日本語のシンボル", "日本語のシンボル", 0),
    ("🚀-USD", "🚀-USD", 0),
    ("a\ud800b", "a?b", 0),  # a lone surrogate could not be encoded as UTF-8 by any backend
    (LONG, "x" * 64, 1),
    ("é" * 100, "é" * 64, 1),
    (SEPARATORS, 'a|b,c#d:e"f_g', 0),  # separators are the backends' to escape; control characters go here
    ("\x00\x1f\x7f\x9f", "____", 0),
    (None, "none", 0),
    (True, "true", 0),
    (42, "42", 0),
    (1.5, "1.5", 0),
    (b"bytes\xff", "bytes\ufffd", 0),
    (Side.BUY, "buy", 0),
]


@pytest.mark.parametrize(("raw", "expected", "folded"), FREE_CASES)
def test_free_renders_and_truncates(raw: object, expected: str, folded: int) -> None:
    """Free renders any value as printable, encodable text of at most max_length characters; truncation is a fold."""
    normalize = Free().build()
    assert normalize(raw) == expected
    assert normalize.folded == folded
    assert normalize.cacheable


# --- OneOf -------------------------------------------------------------------------------------------

SIDE = _policy("orders.filled", "side")
ORDER_TYPE = _policy("orders.filled", "order_type")

ONE_OF_CASES = [
    (SIDE, "buy", "buy"),
    (SIDE, "BUY", "buy"),
    (SIDE, "  Sell ", "sell"),
    (SIDE, "long", "buy"),
    (SIDE, "short", "sell"),
    (SIDE, "-1", "sell"),
    (SIDE, "1", "buy"),
    (SIDE, 1, "buy"),
    (SIDE, Side.BUY, "buy"),
    (SIDE, "", "other"),
    (SIDE, "ŝell", "other"),
    (SIDE, "купить", "other"),
    (SIDE, LONG, "other"),
    (SIDE, "buy|sell", "other"),
    (SIDE, "buy,sell", "other"),
    (SIDE, "buy#1", "other"),
    (SIDE, "buy:1", "other"),
    (SIDE, '"buy"', "buy"),  # quotes are separators to the slug comparison
    (SIDE, "buy\n", "buy"),
    (SIDE, None, "other"),
    (ORDER_TYPE, "Stop Limit", "stop_limit"),
    (ORDER_TYPE, "take-profit", "take_profit"),
    (ORDER_TYPE, "STOP_MARKET", "stop"),
    (ORDER_TYPE, "limit_maker", "limit"),
    (ORDER_TYPE, "iceberg", "other"),
]


@pytest.mark.parametrize(("policy", "raw", "expected"), ONE_OF_CASES)
def test_one_of_maps_values_aliases_and_falls_back(policy: OneOf, raw: object, expected: str) -> None:
    """An enumeration accepts its values and aliases whatever the case, spacing or separators, and folds the rest."""
    normalize = policy.build()
    assert normalize(raw) == expected
    assert normalize.folded == (1 if expected == "other" else 0)


def test_one_of_ambiguous_separator_forms_do_not_guess() -> None:
    """Two keys that differ only in separators ("-1" and "1") keep their own targets; neither is picked by accident."""
    normalize = OneOf(("buy", "sell"), aliases={"-1": "sell", "1": "buy"}).build()
    assert (normalize("-1"), normalize("1"), normalize("_1_")) == ("sell", "buy", "other")


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"values": ()}, "OneOf.values"),
        ({"values": ("buy", "")}, "OneOf.values"),
        ({"values": ("buy",), "aliases": {"long": "hold"}}, "OneOf.aliases"),
    ],
)
def test_one_of_rejects_bad_specs(kwargs: dict[str, object], setting: str) -> None:
    """A malformed enumeration fails at construction, naming the field."""
    with pytest.raises(ConfigurationError) as info:
        OneOf(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting


# --- Categorize --------------------------------------------------------------------------------------

REJECTION_CASES = [
    # reference 000's reasons
    ("risk", "risk"),
    ("position_sizing", "size_constraint"),
    ("spec_violation", "invalid_order"),
    ("post_only_cross", "post_only_cross"),
    ("stop_validation", "invalid_order"),
    # reference 004's categories, from free text
    ("Insufficient balance for order", "insufficient_funds"),
    ("InsufficientFunds", "insufficient_funds"),
    ("max position size exceeded", "limit_exceeded"),
    ("rate_limit_cooldown", "limit_exceeded"),
    ("cooldown active: 30s spacing", "cooldown_active"),
    ("exposure cap reached", "exposure_cap"),
    ("min notional not met", "size_constraint"),
    ("qty below lot step", "size_constraint"),
    ("circuit breaker open", "circuit_breaker"),
    ("regime: high volatility", "regime_block"),
    ("kill switch engaged", "kill_switch_or_stop"),
    ("stop loss hit", "kill_switch_or_stop"),
    # venue and network failures
    ("Order would immediately match and take", "post_only_cross"),
    ("PostOnly rejected", "post_only_cross"),
    ("NetworkError", "connection_error"),
    ("Connection reset by peer", "connection_error"),
    ("request timed out", "timeout"),
    ("ExchangeNotAvailable", "exchange_error"),
    # category names map to themselves, whatever the case and separators
    ("INSUFFICIENT-FUNDS", "insufficient_funds"),
    ("other", "other"),
    # Unicode, empty, very long, separators
    ("", "other"),
    ("Недостаточно средств", "other"),
    ("残高不足 insufficient", "insufficient_funds"),
    ("🚫 cooldown", "cooldown_active"),
    (LONG, "other"),
    (LONG + " insufficient", "other"),  # beyond the 256 characters examined
    ("reason|insufficient,balance#x:y", "insufficient_funds"),
    ('"kill"\nswitch', "kill_switch_or_stop"),
    ('a|b,c#d:e"f\ng', "other"),
    ("unlimited", "other"),  # keywords match at word starts only
    (None, "other"),
    (404, "other"),
]


@pytest.mark.parametrize(("raw", "expected"), REJECTION_CASES)
def test_rejection_reason_categories(raw: object, expected: str) -> None:
    """Free-text order rejections fold into reference 004's categories, validation before stop, network apart."""
    normalize = REJECTION_REASON.build()
    assert normalize(raw) == expected
    assert normalize.folded == (1 if expected == "other" and raw != "other" else 0)


ERROR_CASES = [
    ("RequestTimeout", "timeout"),
    ("ReadTimeout", "timeout"),
    ("HTTP_504", "timeout"),
    ("HTTP_429", "rate_limit"),
    ("HTTP429", "rate_limit"),
    ("http429", "rate_limit"),
    ("RateLimitExceeded", "rate_limit"),
    ("DDoSProtection", "rate_limit"),
    ("Too Many Requests", "rate_limit"),
    ("HTTP_401", "auth_error"),
    ("AuthenticationError", "auth_error"),
    ("PermissionDenied", "auth_error"),
    ("invalid signature", "auth_error"),
    ("HTTP_404", "not_found"),
    ("OrderNotFound", "not_found"),
    ("HTTP_500", "server_error"),
    ("HTTP_503", "server_error"),
    ("OnMaintenance", "server_error"),
    ("InternalServerError", "server_error"),
    ("NetworkError", "connection_error"),
    ("ConnectionResetError", "connection_error"),
    ("ServerDisconnectedError", "connection_error"),
    ("ClientConnectorError", "connection_error"),
    ("SSLError", "connection_error"),
    ("HTTP_400", "invalid_request"),
    ("BadSymbol", "invalid_request"),
    ("ExchangeError", "other"),
    ("HTTPError", "other"),
    ("1429", "other"),  # a status code inside a number is not one
    ("", "other"),
    ("Ошибка сети", "other"),
    (LONG, "other"),
    ("timeout|x,y#z:w", "timeout"),
    ('"network"\nerror', "connection_error"),
    ("connection_error", "connection_error"),
]


@pytest.mark.parametrize(("raw", "expected"), ERROR_CASES)
def test_error_type_categories(raw: object, expected: str) -> None:
    """Exception class names and HTTP_<status> strings fold into reference 004's error types plus invalid_request."""
    assert ERROR_TYPE.build()(raw) == expected


NO_TRADE_CASES = [
    ("all_proposals_blocked_by_risk", "risk_gate"),
    ("no signal", "no_signal"),
    ("confidence below threshold", "low_confidence"),
    ("cooldown", "cooldown_active"),
    ("circuit breaker tripped", "circuit_breaker"),
    ("max drawdown reached", "risk_gate"),
    ("volatility regime", "regime_block"),
    ("market closed (weekend)", "session_closed"),
    ("spread too wide", "spread_too_wide"),
    ("stale data: 5s lag", "stale_data"),
    ("insufficient balance", "insufficient_funds"),
    ("", "other"),
    ("ничего", "other"),
    (LONG, "other"),
    ('spread|x,y#z:w"\n', "spread_too_wide"),
]


@pytest.mark.parametrize(("raw", "expected"), NO_TRADE_CASES)
def test_no_trade_reason_categories(raw: object, expected: str) -> None:
    """Reasons a cycle did not trade fold into a small fixed set."""
    assert NO_TRADE_REASON.build()(raw) == expected


def test_reference_004_categories_are_kept() -> None:
    """Every category and error type of reference 004 is still emitted by the built-in policies."""
    assert {
        "insufficient_funds",
        "limit_exceeded",
        "cooldown_active",
        "exposure_cap",
        "size_constraint",
        "circuit_breaker",
        "regime_block",
        "kill_switch_or_stop",
        "other",
    } <= set(REJECTION_REASON.categories)
    assert {
        "timeout",
        "rate_limit",
        "auth_error",
        "not_found",
        "server_error",
        "connection_error",
        "other",
    } <= set(ERROR_TYPE.categories)


def test_categorize_first_rule_wins_and_multiword_keywords() -> None:
    """Rule order decides between matching categories; a multi-word keyword matches joined or as consecutive words."""
    policy = Categorize((("b", ("beta",)), ("a", ("alpha", "too soon"))))
    normalize = policy.build()
    assert normalize("alpha then beta") == "b"
    assert normalize("TooSoon") == "a"
    assert normalize("too-soon") == "a"
    assert normalize("too early, soon") == "other"
    assert policy.categories == ("b", "a", "other")
    assert policy.bound == 3


@given(st.text(max_size=300))
def test_categorize_emits_only_its_categories(text: str) -> None:
    """Whatever the input, a categoriser emits one of its categories (a bounded label)."""
    assert REJECTION_REASON.build()(text) in REJECTION_REASON.categories
    assert ERROR_TYPE.build()(text) in ERROR_TYPE.categories


@pytest.mark.parametrize(
    "rules",
    [(), (("a", ()),), (("", ("x",)),), (("a", "keyword"),), (("a", ("!!",)),)],
)
def test_categorize_rejects_bad_rules(rules: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Empty rules, empty categories, a bare string of keywords or keywords without letters fail at construction."""
    with pytest.raises(ConfigurationError):
        Categorize(rules)


# --- StatusClass -------------------------------------------------------------------------------------

STATUS_CASES = [
    (200, "2xx"),
    (404, "4xx"),
    (599, "5xx"),
    (HTTPStatus.TOO_MANY_REQUESTS, "4xx"),
    ("301", "3xx"),
    (" 503 ", "5xx"),
    ("4XX", "4xx"),
    ("5xx", "5xx"),
    (99, "other"),
    (600, "other"),
    (True, "other"),
    ("", "other"),
    ("\uff14\uff10\uff14", "other"),  # full-width digits are not a status code
    ("4O4", "other"),
    (LONG, "other"),
    ("404|", "other"),
    ("4,4", "other"),
    ("#04", "other"),
    ('"404"', "other"),
    ("404\n", "other"),
    (404.0, "other"),
    (None, "other"),
]


@pytest.mark.parametrize(("raw", "expected"), STATUS_CASES)
def test_status_class(raw: object, expected: str) -> None:
    """HTTP statuses fold to 1xx..5xx; anything that is not exactly a status code is other (and counted)."""
    normalize = StatusClass().build()
    assert normalize(raw) == expected
    assert normalize.folded == (1 if expected == "other" else 0)


# --- ClientAddress -----------------------------------------------------------------------------------

ADDRESS_CASES = [
    ("203.0.113.77", "203.0.113.0/24"),
    (" 203.0.113.77 ", "203.0.113.0/24"),
    ("203.0.113.77:51234", "203.0.113.0/24"),
    ("0.0.0.0", "0.0.0.0/24"),
    ("255.255.255.255", "255.255.255.0/24"),
    ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
    ("[2001:db8:abcd:12::1]:443", "2001:db8:abcd::/48"),
    ("fe80::1%eth0", "fe80::/48"),
    ("::ffff:198.51.100.9", "198.51.100.0/24"),
    ("::1", "::/48"),
    (ipaddress.ip_address("192.0.2.200"), "192.0.2.0/24"),
    (("198.51.100.23", 8080), "198.51.100.0/24"),  # (host, port) as ASGI servers give it
    ("01.2.3.4", "invalid"),  # leading zeros are ambiguous (octal) and refused, as by ipaddress
    ("256.1.1.1", "invalid"),
    ("1.2.3", "invalid"),
    ("1.2.3.4.5", "invalid"),
    ("\u0661.\u0662.\u0663.\u0664", "invalid"),  # Arabic-Indic digits: digits to str.isdigit, not to IP
    ("", "invalid"),
    ("localhost", "invalid"),
    ("203.0.113.77, 10.0.0.1", "invalid"),
    ("1.2.3.4|x", "invalid"),
    ("1.2.3.4#x", "invalid"),
    ('"1.2.3.4"', "invalid"),
    ("1.2.3.4\n", "1.2.3.0/24"),  # whitespace around the address is ignored
    (LONG, "invalid"),
    (None, "invalid"),
    ((), "invalid"),
]


@pytest.mark.parametrize(("raw", "expected"), ADDRESS_CASES)
def test_client_address_folds_to_networks(raw: object, expected: str) -> None:
    """Client addresses become their /24 or /48 network; anything unparseable is 'invalid', never the raw text."""
    normalize = ClientAddress().build()
    assert normalize(raw) == expected
    assert normalize.folded == (1 if expected == "invalid" else 0)


@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_client_address_ipv4_fast_path_matches_ipaddress(address: ipaddress.IPv4Address, prefix: int) -> None:
    """The hand-written IPv4 path gives exactly what the ipaddress module gives, for every prefix."""
    expected = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    assert ClientAddress(ipv4_prefix=prefix).build()(str(address)) == expected


@given(st.ip_addresses())
def test_client_address_never_returns_the_raw_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """With the default prefixes or a keyed hash, the recorded value never contains the full address."""
    text = str(address)
    assert ClientAddress().build()(text) != text
    hashed = ClientAddress(hash_key=b"k" * 32).build()(text)
    assert hashed.startswith("h:")
    assert text not in hashed


def test_client_address_keyed_hash() -> None:
    """The keyed hash is stable, differs per key and per network, and is the same for addresses of one network."""
    one = ClientAddress(hash_key=b"0123456789abcdef").build()
    two = ClientAddress(hash_key=b"fedcba9876543210").build()
    assert one("203.0.113.1") == one("203.0.113.200")
    assert one("203.0.113.1") != one("203.0.114.1")
    assert one("203.0.113.1") != two("203.0.113.1")
    whole = ClientAddress(ipv4_prefix=32, ipv6_prefix=128, hash_key=b"0123456789abcdef").build()
    assert whole("203.0.113.1") != whole("203.0.113.2")
    assert len(one("203.0.113.1")) == 18


def test_client_address_key_never_shown() -> None:
    """The hash key appears in no repr, no describe() text and no error message."""
    key = b"super-secret-key-123"
    policy = ClientAddress(hash_key=key)
    for text in (repr(policy), policy.describe(), repr(policy.build())):
        assert "super-secret" not in text
    with pytest.raises(ConfigurationError) as info:
        ClientAddress(hash_key=b"short-secret")
    assert "short-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"ipv4_prefix": 33}, "ClientAddress.ipv4_prefix"),
        ({"ipv6_prefix": -1}, "ClientAddress.ipv6_prefix"),
        ({"ipv4_prefix": True}, "ClientAddress.ipv4_prefix"),
        ({"hash_key": "a-string-not-bytes-000"}, "ClientAddress.hash_key"),
    ],
)
def test_client_address_rejects_bad_specs(kwargs: dict[str, object], setting: str) -> None:
    """Prefixes outside 0..32 / 0..128 and keys that are not bytes of 16 or more fail at construction."""
    with pytest.raises(ConfigurationError) as info:
        ClientAddress(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting


def test_client_address_configurable_prefixes() -> None:
    """Prefix lengths are configurable per policy."""
    normalize = ClientAddress(ipv4_prefix=16, ipv6_prefix=32).build()
    assert normalize("203.0.113.77") == "203.0.0.0/16"
    assert normalize("2001:db8:abcd::1") == "2001:db8::/32"


# --- TopN (table; behaviour under floods is in test_labels_topn.py) ----------------------------------

TOP_N_CASES = [
    ("BTC-USD", "BTC-USD"),
    ("", ""),
    ("ビットコイン", "ビットコイン"),
    ("BTC/USDT:USDT", "BTC/USDT:USDT"),
    ('B|T,C#U:S"D', 'B|T,C#U:S"D'),
    ("BTC\nUSD", "BTC_USD"),
    (LONG, "x" * 64),
    (None, "none"),
]


@pytest.mark.parametrize(("raw", "expected"), TOP_N_CASES)
def test_top_n_keeps_values_while_there_is_room(raw: object, expected: str) -> None:
    """Below n distinct values TopN records each value as given (printable, truncated), merging nothing."""
    normalize = TopN(n=3).build()
    assert normalize(raw) == expected
    assert normalize(raw) == expected
    assert not normalize.cacheable


def test_top_n_does_not_merge_spellings() -> None:
    """Different spellings of a symbol stay different values: TopN ranks, it does not canonicalise."""
    normalize = TopN(n=10).build()
    assert [normalize(s) for s in ("BTC-USD", "BTC/USD", "btc-usd", "BTC-USD ")] == [
        "BTC-USD",
        "BTC/USD",
        "btc-usd",
        "BTC-USD ",
    ]


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"n": 0}, "TopN.n"),
        ({"n": 10, "tracked": 5}, "TopN.tracked"),
        ({"max_length": 0}, "TopN.max_length"),
        ({"n": True}, "TopN.n"),
    ],
)
def test_top_n_rejects_bad_specs(kwargs: dict[str, object], setting: str) -> None:
    """n < 1, a candidate table smaller than n or a zero max_length fail at construction."""
    with pytest.raises(ConfigurationError) as info:
        TopN(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting


# --- shared properties -------------------------------------------------------------------------------


class Venue(enum.StrEnum):
    BINANCE = "binance"


@pytest.mark.parametrize("policy", [Free(), TopN(n=5)], ids=lambda p: type(p).__name__)
def test_str_subclasses_become_plain_strings(policy: Free) -> None:
    """A StrEnum value is recorded as a plain str, so that it and the same text share one series."""
    normalize = policy.build()
    result = normalize(Venue.BINANCE)
    assert type(result) is str
    assert result == normalize("binance") == "binance"


ALL_POLICIES = [
    Free(),
    SIDE,
    REJECTION_REASON,
    ERROR_TYPE,
    NO_TRADE_REASON,
    StatusClass(),
    ClientAddress(),
    TopN(n=5),
]


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: type(p).__name__)
@given(value=st.one_of(st.text(max_size=500), st.integers(), st.floats(), st.binary(max_size=100), st.none()))
def test_every_normaliser_returns_short_encodable_text(policy: Free, value: object) -> None:
    """Any value becomes a str of at most 64 characters, encodable as UTF-8, without control characters."""
    result = policy.build()(value)
    assert isinstance(result, str)
    assert len(result) <= 64
    result.encode("utf-8")
    assert to_text(result) == result


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: type(p).__name__)
def test_every_policy_describes_itself(policy: Free) -> None:
    """Each built-in policy states what it does and its bound (None only where values are open-ended)."""
    assert policy.describe()
    assert policy.bound is None or policy.bound >= 2 or isinstance(policy, Free)
