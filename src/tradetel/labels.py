"""Label policies: how attribute values are normalised before they are recorded.

A policy is a small frozen value object (data, so that the catalog and config
files can state it); ``policy.build()`` returns a fresh normaliser, a callable
that maps any value to a bounded string. Normalisers that fold values count
how many they folded in ``normaliser.folded``, which tradetel exports as
``tradetel.attributes.folded``.

Every built-in policy also says what it does (``describe()``) and how many
distinct values it can emit at most (``bound``, ``None`` when unbounded), so
that docs and series-limit sizing are derived from the same data.

Example::

    >>> side = OneOf(("buy", "sell")).build()
    >>> side("BUY"), side("short")
    ('buy', 'other')
    >>> REJECTION_REASON.build()("Position sizing: qty below minimum")
    'size_constraint'
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .errors import ConfigurationError

__all__ = [
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
]

OTHER = "other"
INVALID = "invalid"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


class Normalizer(Protocol):
    """A built policy: maps one attribute value to its recorded string.

    ``folded`` counts values the policy folded (fallbacks, truncations).
    ``cacheable`` is true when the result depends on the value alone, so a
    caller may memoise it; stateful policies such as :class:`TopN` say false.
    """

    folded: int
    cacheable: bool

    def __call__(self, value: object) -> str: ...


class LabelPolicy(Protocol):
    """A policy spec: immutable data that builds a normaliser; everything tradetel calls on a policy.

    ``build()`` runs once per instrument and :class:`~tradetel.Telemetry`;
    ``bound`` is the most distinct values the normaliser can return
    (``None`` when unbounded), used for the worst-case series counts of
    ``docs/cardinality.md``; ``describe()`` is a short text for that page. A
    policy with ``build()`` alone (as 0.1 required) still works: it counts as
    unbounded and is described by its class name.

    Example::

        @dataclass(frozen=True)
        class Venue:
            bound = 3

            def describe(self) -> str:
                return "cex, dex or otc"

            def build(self) -> Normalizer:
                return OneOf(("cex", "dex", "otc")).build()
    """

    @property
    def bound(self) -> int | None: ...

    def describe(self) -> str: ...

    def build(self) -> Normalizer: ...


def to_text(value: object, max_length: int = 64) -> str:
    """Render any attribute value as a printable string of at most ``max_length`` characters."""
    if type(value) is str:
        text = value
    elif isinstance(value, str):
        # A StrEnum member must become a plain str: the SDK keys series by value *and* type, so
        # Side.BUY and "buy" would otherwise be two series with the same labels.
        text = str.__str__(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "none"
    elif isinstance(value, bytes | bytearray):
        text = bytes(value[: max_length * 4]).decode("utf-8", "replace")
    else:
        enum_value = getattr(value, "value", None)
        text = enum_value if isinstance(enum_value, str) else str(value)
    if len(text) > max_length:
        text = text[:max_length]
    if _CONTROL.search(text):
        text = _CONTROL.sub("_", text)
    if not text.isascii():
        # A lone surrogate (from JSON "\ud800", say) cannot be encoded as UTF-8 and would break
        # every exposition and datagram that carries it.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _slug(text: str) -> str:
    return _NON_WORD.sub("_", text.lower()).strip("_")


class _Normalizer:
    """Base of the built normalisers: a folded counter and a callable."""

    __slots__ = ("folded",)
    cacheable = True

    def __init__(self) -> None:
        self.folded = 0


# --- free text ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Free:
    """Any value, rendered as text, control characters replaced, truncated to ``max_length``.

    Unbounded: use it only where the values are bounded by construction
    (tradetel's own instrument names, for example) or under a series limit.
    """

    max_length: int = 64

    def __post_init__(self) -> None:
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 1:
            raise ConfigurationError("Free.max_length", self.max_length, "an integer >= 1")

    @property
    def bound(self) -> int | None:
        return None

    def describe(self) -> str:
        return f"free text, truncated to {self.max_length} characters"

    def build(self) -> Normalizer:
        return _FreeNormalizer(self.max_length)


class _FreeNormalizer(_Normalizer):
    __slots__ = ("_max_length",)

    def __init__(self, max_length: int) -> None:
        super().__init__()
        self._max_length = max_length

    def __call__(self, value: object) -> str:
        text = to_text(value, self._max_length + 1)
        if len(text) > self._max_length:
            self.folded += 1
            return text[: self._max_length]
        return text


# --- enumerations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OneOf:
    """An enumeration: values outside ``values`` (after lower-casing and aliases) become ``fallback``.

    Matching ignores case and surrounding spaces, then separators
    (``"Stop Limit"`` and ``"stop-limit"`` find ``stop_limit``).

    Example: ``OneOf(("buy", "sell"), aliases={"long": "buy", "short": "sell"})``.
    """

    values: tuple[str, ...]
    fallback: str = OTHER
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.values or not all(isinstance(v, str) and v for v in self.values):
            raise ConfigurationError("OneOf.values", self.values, "a non-empty tuple of non-empty strings")
        if not isinstance(self.fallback, str):
            raise ConfigurationError("OneOf.fallback", self.fallback, "a string")
        for target in self.aliases.values():
            if target not in self.values:
                raise ConfigurationError("OneOf.aliases", dict(self.aliases), f"aliases that map onto {self.values}")

    @property
    def bound(self) -> int:
        return len(set(self.values) | {self.fallback})

    def describe(self) -> str:
        return f"one of {', '.join(self.values)}; anything else becomes {self.fallback}"

    def build(self) -> Normalizer:
        return _OneOfNormalizer(self)


class _OneOfNormalizer(_Normalizer):
    __slots__ = ("_fallback", "_lookup", "_slugs")

    def __init__(self, spec: OneOf) -> None:
        super().__init__()
        self._lookup = {v.lower(): v for v in spec.values}
        self._lookup.update({k.lower(): v for k, v in spec.aliases.items()})
        slugs: dict[str, str | None] = {}
        for key, target in self._lookup.items():
            slug = _slug(key)
            # "-1" and "1" slug alike; an ambiguous slug must not pick one at random
            slugs[slug] = target if slugs.get(slug, target) == target else None
        self._slugs = {k: v for k, v in slugs.items() if v is not None and k}
        self._fallback = spec.fallback

    def __call__(self, value: object) -> str:
        text = to_text(value).strip().lower()
        found = self._lookup.get(text)
        if found is None:
            found = self._slugs.get(_slug(text))
            if found is None:
                self.folded += 1
                return self._fallback
        return found


# --- free text to categories -------------------------------------------------------------------------

# Where a word starts inside a token: camelCase humps ("RateLimitExceeded"), an acronym before a
# word ("HTTPError") and letters before digits ("HTTP429").
_LETTER_DIGIT = re.compile(r"[a-z][0-9]")
_HUMP = re.compile(r"[a-z0-9](?=[A-Z])|[A-Z](?=[A-Z][a-z])|[A-Za-z](?=[0-9])")


def _keyword_words(keyword: str) -> tuple[str, ...]:
    return tuple(w for w in _SEPARATORS.split(keyword.lower()) if w)


@dataclass(frozen=True, slots=True)
class Categorize:
    """Free text mapped to canonical categories by keyword; the first rule with a match wins.

    ``rules`` is a sequence of ``(category, keywords)``. A keyword matches
    where a word of the value starts with it, ignoring case: words are split
    at separators, at camelCase humps and between letters and digits, and a
    keyword's own separators are optional (``"post only"`` matches
    ``post_only``, ``PostOnly`` and ``post-only order``). A value that is a
    category name maps to itself; anything unmatched becomes ``fallback``.

    Example::

        >>> Categorize((("timeout", ("timeout", "timed out")),)).build()("ReadTimeout")
        'timeout'
    """

    rules: tuple[tuple[str, tuple[str, ...]], ...]
    fallback: str = OTHER

    def __post_init__(self) -> None:
        accepted = "a non-empty sequence of (category, keywords) with non-empty keywords"
        if not self.rules:
            raise ConfigurationError("Categorize.rules", self.rules, accepted)
        for category, keywords in self.rules:
            if not isinstance(category, str) or not category or isinstance(keywords, str) or not keywords:
                raise ConfigurationError("Categorize.rules", (category, keywords), accepted)
            if not all(isinstance(k, str) and _keyword_words(k) for k in keywords):
                raise ConfigurationError("Categorize.rules", (category, keywords), accepted)

    @property
    def categories(self) -> tuple[str, ...]:
        """Every value this policy can emit, fallback last."""
        return tuple(dict.fromkeys([*(c for c, _ in self.rules), self.fallback]))

    @property
    def bound(self) -> int:
        return len(self.categories)

    def describe(self) -> str:
        return f"free text mapped by keyword to {', '.join(self.categories)}"

    def build(self) -> Normalizer:
        return _CategorizeNormalizer(self)


_Entry = tuple[int, str, tuple[str, ...]]


class _CategorizeNormalizer(_Normalizer):
    """Keyword lookup by the first three letters of each word of the value.

    A keyword of several words matches either run together as one word
    (``postonly``) or as consecutive words (``post only``). Python-level
    regex alternation over every keyword at every word start costs about
    ten times as much.
    """

    __slots__ = ("_categories", "_fallback", "_names", "_prefix_lengths", "_table")

    def __init__(self, spec: Categorize) -> None:
        super().__init__()
        table: dict[str, list[_Entry]] = {}
        for priority, (_, keywords) in enumerate(spec.rules):
            for keyword in keywords:
                words = _keyword_words(keyword)
                forms: list[tuple[str, tuple[str, ...]]] = [("".join(words), ())]
                if len(words) > 1:
                    forms.append((words[0], words[1:]))
                for first, rest in forms:
                    table.setdefault(first[:3], []).append((priority, first, rest))
        self._table = table
        self._prefix_lengths = tuple(sorted({len(key) for key in table}, reverse=True))
        self._names = [category for category, _ in spec.rules]
        self._categories = {_slug(c): c for c in spec.categories}
        self._fallback = spec.fallback

    def __call__(self, value: object) -> str:
        text = to_text(value, 256)
        lowered = text.lower()
        base = _NON_WORD.sub("_", lowered)
        own = self._categories.get(base.strip("_"))
        if own is not None:
            return own
        words = base.split("_")
        if (lowered != text or _LETTER_DIGIT.search(base)) and _HUMP.search(text):
            words += _NON_WORD.sub("_", _HUMP.sub(r"\g<0>_", text).lower()).split("_")
        best = len(self._names)
        table = self._table
        for index, word in enumerate(words):
            for length in self._prefix_lengths:
                entries = table.get(word[:length])
                if entries is None:
                    continue
                for priority, first, rest in entries:
                    if priority < best and (
                        word.startswith(first) if not rest else word == first and _follows(words, index + 1, rest)
                    ):
                        best = priority
            if best == 0:
                break
        if best < len(self._names):
            return self._names[best]
        self.folded += 1
        return self._fallback


def _follows(words: list[str], start: int, rest: tuple[str, ...]) -> bool:
    """Whether ``words[start:]`` begins with ``rest`` (the last of them as a prefix)."""
    if start + len(rest) > len(words):
        return False
    *whole, last = rest
    return all(words[start + i] == w for i, w in enumerate(whole)) and words[start + len(whole)].startswith(last)


REJECTION_REASON = Categorize(
    (
        (
            "post_only_cross",
            ("post only", "postonly", "would cross", "would take", "immediately fillable", "would immediately"),
        ),
        ("insufficient_funds", ("insufficient", "balance", "margin", "funds", "not enough")),
        ("limit_exceeded", ("limit", "max", "exceed")),
        ("cooldown_active", ("cooldown", "cool down", "spacing", "too soon", "too frequent")),
        ("exposure_cap", ("exposure", "cap", "concentration")),
        (
            "size_constraint",
            ("size", "sizing", "notional", "min qty", "min amount", "lot", "precision", "step", "quantity", "qty"),
        ),
        ("circuit_breaker", ("circuit", "breaker")),
        ("regime_block", ("regime", "volatility")),
        # Before kill_switch_or_stop: "stop_validation" is a validation failure of a stop order.
        (
            "invalid_order",
            ("invalid", "validation", "validate", "spec", "malformed", "bad symbol", "symbol", "price", "tick"),
        ),
        ("kill_switch_or_stop", ("kill", "stop", "halt", "emergency")),
        ("risk", ("risk",)),
        ("timeout", ("timeout", "timed out")),
        (
            "connection_error",
            ("network", "connection", "connect", "socket", "dns", "refused", "reset", "unreachable", "disconnect"),
        ),
        ("exchange_error", ("exchange", "server", "unavailable", "not available", "maintenance", "503", "502")),
    )
)
"""Order rejection reasons: reference 004's categories (insufficient_funds, limit_exceeded,
cooldown_active, exposure_cap, size_constraint, circuit_breaker, regime_block,
kill_switch_or_stop, other) plus post_only_cross, invalid_order (validation and
spec failures), risk, and timeout, connection_error and exchange_error for
rejections caused by the venue or the network."""

NO_TRADE_REASON = Categorize(
    (
        ("no_signal", ("no signal", "no setup", "no entry", "no opportunity", "flat", "hold")),
        ("low_confidence", ("confidence", "score", "threshold", "weak")),
        ("cooldown_active", ("cooldown", "cool down", "spacing", "too soon")),
        ("circuit_breaker", ("circuit", "breaker", "kill")),
        ("risk_gate", ("risk", "gate", "exposure", "drawdown", "limit", "max")),
        ("regime_block", ("regime", "volatility")),
        ("session_closed", ("session", "market closed", "closed market", "weekend", "hours", "holiday")),
        ("spread_too_wide", ("spread",)),
        ("stale_data", ("stale", "lag", "outdated", "old data")),
        ("insufficient_funds", ("insufficient", "balance", "funds", "margin")),
    )
)
"""Reasons a strategy cycle decided not to trade."""

ERROR_TYPE = Categorize(
    (
        ("timeout", ("timeout", "timed out", "408", "504", "deadline")),
        ("rate_limit", ("429", "418", "rate", "too many requests", "ddos", "throttl")),
        (
            "auth_error",
            ("401", "403", "auth", "permission", "signature", "api key", "apikey", "forbidden", "unauthori", "nonce"),
        ),
        ("not_found", ("404", "not found", "notfound", "no such")),
        (
            "server_error",
            (
                "500",
                "502",
                "503",
                "server error",
                "internal",
                "bad gateway",
                "unavailable",
                "not available",
                "maintenance",
                "overload",
                "5xx",
            ),
        ),
        (
            "connection_error",
            (
                "connection",
                "connect",
                "network",
                "socket",
                "dns",
                "refused",
                "reset",
                "unreachable",
                "disconnect",
                "broken pipe",
                "ssl",
                "eof",
            ),
        ),
        ("invalid_request", ("400", "invalid", "bad request", "badrequest", "bad symbol", "argument", "not supported")),
    )
)
"""Exchange and API error types: reference 004's categories (timeout, rate_limit, auth_error,
not_found, server_error, connection_error, other) plus invalid_request. Works on exception
class names (``RequestTimeout``, ``NetworkError``, ``DDoSProtection``) and on ``HTTP_<status>``."""


# --- HTTP status classes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusClass:
    """HTTP status codes folded to their class: ``404`` → ``4xx``; anything else → ``other``."""

    @property
    def bound(self) -> int:
        return 6

    def describe(self) -> str:
        return "HTTP status class 1xx to 5xx; anything else becomes other"

    def build(self) -> Normalizer:
        return _StatusClassNormalizer()


class _StatusClassNormalizer(_Normalizer):
    __slots__ = ()

    def __call__(self, value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            if 100 <= value <= 599:
                return f"{value // 100}xx"
            self.folded += 1
            return OTHER
        text = to_text(value, 16).strip()
        if len(text) == 3 and text[0] in "12345" and text.isascii():
            if text[1:].isdigit():
                return text[0] + "xx"
            if text[1:].lower() == "xx":
                return text.lower()
        self.folded += 1
        return OTHER


# --- client addresses --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """Client IP addresses folded to a network prefix, optionally replaced by a keyed hash of it.

    Raw client addresses never reach a backend: IPv4 → its ``/ipv4_prefix``
    network, IPv6 → its ``/ipv6_prefix`` network (IPv4-mapped IPv6 counts as
    IPv4). With ``hash_key`` (at least 16 bytes, kept out of reprs and error
    messages) the network is replaced by ``h:`` and 16 hex digits of its
    HMAC-SHA256, so that networks can be told apart but not read; set the
    prefixes to 32 and 128 to hash whole addresses. Accepted inputs: address
    strings (with a port, brackets or an IPv6 zone), :mod:`ipaddress` objects,
    and ``(host, port)`` pairs as ASGI servers give them. Anything else
    becomes ``invalid``.

    Example::

        >>> ClientAddress().build()("203.0.113.77")
        '203.0.113.0/24'
    """

    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    hash_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, top in (("ipv4_prefix", 32), ("ipv6_prefix", 128)):
            prefix = getattr(self, name)
            if isinstance(prefix, bool) or not isinstance(prefix, int) or not 0 <= prefix <= top:
                raise ConfigurationError(f"ClientAddress.{name}", prefix, f"an integer from 0 to {top}")
        if self.hash_key is not None and (not isinstance(self.hash_key, bytes) or len(self.hash_key) < 16):
            raise ConfigurationError("ClientAddress.hash_key", self.hash_key, "at least 16 bytes", secret=True)

    @property
    def bound(self) -> int | None:
        return None

    def describe(self) -> str:
        networks = f"IPv4 /{self.ipv4_prefix}, IPv6 /{self.ipv6_prefix} network"
        if self.hash_key is not None:
            return f"keyed hash of the client's {networks}; never the raw address"
        return f"client {networks}; never the raw address"

    def build(self) -> Normalizer:
        return _ClientAddressNormalizer(self)


def _parse_ipv4(text: str) -> int | None:
    """The address as an integer, with the exact rules of :mod:`ipaddress` (no leading zeros), or None."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    number = 0
    for part in parts:
        if not (0 < len(part) <= 3 and part.isascii() and part.isdigit()) or (part[0] == "0" and len(part) > 1):
            return None
        octet = int(part)
        if octet > 255:
            return None
        number = number << 8 | octet
    return number


class _ClientAddressNormalizer(_Normalizer):
    __slots__ = ("_key", "_mask4", "_v4", "_v6")

    def __init__(self, spec: ClientAddress) -> None:
        super().__init__()
        self._v4 = spec.ipv4_prefix
        self._v6 = spec.ipv6_prefix
        self._mask4 = (0xFFFFFFFF << (32 - spec.ipv4_prefix)) & 0xFFFFFFFF
        self._key = spec.hash_key

    def __repr__(self) -> str:
        return f"<client address normaliser /{self._v4} /{self._v6}{' hashed' if self._key else ''}>"

    def __call__(self, value: object) -> str:
        if isinstance(value, tuple | list) and value:
            value = value[0]  # (host, port) from an ASGI scope or a socket's peername
        if isinstance(value, str):
            value = value.strip()  # before to_text, which turns a trailing newline into "_"
        text = to_text(value, 64)
        number = _parse_ipv4(text)
        if number is None:
            network = self._slow(text)
            if network is None:
                self.folded += 1
                return INVALID
        else:
            number &= self._mask4
            network = f"{number >> 24}.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}/{self._v4}"
        if self._key is not None:
            return "h:" + hmac.new(self._key, network.encode(), hashlib.sha256).hexdigest()[:16]
        return network

    def _slow(self, text: str) -> str | None:
        if text.startswith("["):
            text = text[1:].split("]", 1)[0]  # [v6]:port
        elif text.count(":") == 1:
            text = text.split(":", 1)[0]  # v4:port
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        prefix = self._v4 if address.version == 4 else self._v6
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# --- open sets: top-N guard --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopN:
    """An open set (symbols, strategies) kept to its ``n`` heaviest values; the tail folds into ``fallback``.

    Values are admitted while there is room. Once the set is full, a newcomer
    is counted in a bounded table of ``tracked`` candidates (Misra-Gries
    counting, so its count never overstates its volume) and is admitted only
    when that count exceeds twice the lightest admitted value's count;
    the lightest value then folds. A flood of junk values therefore never
    displaces a steady heavy hitter such as ``BTC-USD``, and memory stays at
    ``n + tracked`` strings of at most ``max_length`` characters. Values are
    truncated to ``max_length`` and otherwise kept as given.

    Example::

        >>> symbols = TopN(n=2).build()
        >>> [symbols(s) for s in ("BTC-USD", "ETH-USD", "junk-1", "BTC-USD")]
        ['BTC-USD', 'ETH-USD', 'other', 'BTC-USD']
    """

    n: int = 100
    fallback: str = OTHER
    max_length: int = 64
    tracked: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ConfigurationError("TopN.n", self.n, "an integer >= 1")
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 1:
            raise ConfigurationError("TopN.max_length", self.max_length, "an integer >= 1")
        if self.tracked is not None and (
            isinstance(self.tracked, bool) or not isinstance(self.tracked, int) or self.tracked < self.n
        ):
            raise ConfigurationError("TopN.tracked", self.tracked, f"an integer >= n ({self.n})")

    @property
    def candidates(self) -> int:
        """How many non-admitted values are counted: ``tracked``, or by default ``max(1024, 4 * n)``."""
        return self.tracked if self.tracked is not None else max(1024, 4 * self.n)

    @property
    def bound(self) -> int:
        return self.n + 1

    def describe(self) -> str:
        return f"top {self.n} values by volume; the rest become {self.fallback}"

    def build(self) -> Normalizer:
        return _TopNNormalizer(self)


class _TopNNormalizer(_Normalizer):
    """Admitted values with hit counts, plus Misra-Gries counts for candidates.

    The hit path is one dict lookup and an increment in a one-item list (a
    cell, so that a value demoted by another thread is never re-inserted).
    Misses take a lock; ``_floor`` is a lower bound of the lightest admitted
    count, so a miss only scans the admitted set when a candidate may qualify.
    ``promotions`` and ``scans`` count admissions into a full set and those
    scans, for tests and benchmarks.
    """

    __slots__ = (
        "_admitted",
        "_candidates",
        "_fallback",
        "_floor",
        "_lock",
        "_max_length",
        "_n",
        "_tracked",
        "promotions",
        "scans",
    )
    cacheable = False

    def __init__(self, spec: TopN) -> None:
        super().__init__()
        self._n = spec.n
        self._tracked = spec.candidates
        self._fallback = spec.fallback
        self._max_length = spec.max_length
        self._admitted: dict[str, list[int]] = {}
        self._candidates: dict[str, int] = {}
        self._floor = 0
        self._lock = threading.Lock()
        self.promotions = 0
        self.scans = 0

    def __repr__(self) -> str:
        return f"<top-{self._n} normaliser: {len(self._admitted)} admitted, {len(self._candidates)} candidates>"

    def __call__(self, value: object) -> str:
        if type(value) is str:
            cell = self._admitted.get(value)
            if cell is not None:
                cell[0] += 1  # unlocked: a lost increment only blurs the ranking
                return value
        text = to_text(value, self._max_length)
        cell = self._admitted.get(text)
        if cell is not None:
            cell[0] += 1
            return text
        with self._lock:
            return self._miss(text)

    def admitted(self) -> dict[str, int]:
        """The admitted values and their counts since admission, heaviest first."""
        items = [(value, cell[0]) for value, cell in list(self._admitted.items())]
        return dict(sorted(items, key=lambda item: -item[1]))

    def _miss(self, text: str) -> str:
        admitted = self._admitted
        cell = admitted.get(text)
        if cell is not None:  # admitted by another thread meanwhile
            cell[0] += 1
            return text
        candidates = self._candidates
        count = candidates.pop(text, 0) + 1
        if len(admitted) < self._n:
            admitted[text] = [count]
            return text
        # Admit when count > 2 x the lightest: hysteresis, so that values of similar volume do not take turns.
        if count > 2 * self._floor:
            lightest, lightest_count = min(((v, c[0]) for v, c in admitted.items()), key=lambda item: item[1])
            self._floor = lightest_count
            self.scans += 1
            if count > 2 * lightest_count:
                del admitted[lightest]
                admitted[text] = [count]
                candidates[lightest] = lightest_count
                self.promotions += 1
                self._prune()
                return text
        candidates[text] = count
        self._prune()
        self.folded += 1
        return self._fallback

    def _prune(self) -> None:
        candidates = self._candidates
        if len(candidates) <= self._tracked:
            return
        # Batched Misra-Gries decrement: subtract the median count from every candidate and forget
        # those left at zero. At least half go, so the cost is amortised O(1) per miss, and a
        # remaining count never exceeds the value's true count since it was tracked.
        median = sorted(candidates.values())[len(candidates) // 2]
        self._candidates = {v: c - median for v, c in candidates.items() if c > median}


# --- config files ------------------------------------------------------------------------------------

Normalize = Callable[[object], str]

_NAMED: dict[str, LabelPolicy] = {
    "rejection_reason": REJECTION_REASON,
    "no_trade_reason": NO_TRADE_REASON,
    "error_type": ERROR_TYPE,
}
_KINDS = ("free", "one_of", "top_n", "client_address", "status_class", "categorize", *_NAMED)


def _redacted(raw: object) -> object:
    if isinstance(raw, Mapping) and "hash_key" in raw:
        return {k: ("<redacted>" if k == "hash_key" else v) for k, v in raw.items()}
    return raw


def policy_from_config(setting: str, raw: object) -> LabelPolicy:
    """Build a policy from a config-file value (or pass a policy object through).

    Accepted forms: a policy object (anything with ``build()``); a name
    (``"rejection_reason"``, ``"no_trade_reason"``, ``"error_type"``,
    ``"status_class"``, ``"client_address"``, ``"free"``, ``"top_n"``); or a
    table with ``policy`` set to one of those names or ``one_of`` /
    ``categorize``, plus that policy's fields: ``max_length`` (free, top_n),
    ``values``/``fallback``/``aliases`` (one_of), ``n``/``fallback``/``tracked``
    (top_n), ``ipv4_prefix``/``ipv6_prefix``/``hash_key`` (client_address),
    ``rules`` as ``{category: [keywords]}`` and ``fallback`` (categorize).

    Example (TOML)::

        [instruments."orders.filled".attributes.symbol]
        policy = "top_n"
        n = 50

    Raises:
        ConfigurationError: naming ``setting``, the value (``hash_key`` redacted) and the accepted forms.
    """
    if not isinstance(raw, str | Mapping) and callable(getattr(raw, "build", None)):
        return raw  # type: ignore[return-value]
    accepted = (
        "a policy name (rejection_reason, no_trade_reason, error_type, status_class, client_address, free, top_n) "
        "or a table with policy = " + " | ".join(_KINDS) + " and that policy's fields"
    )
    if isinstance(raw, str):
        raw = {"policy": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("policy"), str):
        raise ConfigurationError(setting, _redacted(raw), accepted)
    fields = dict(raw)
    kind = str(fields.pop("policy"))
    try:
        if kind in _NAMED and not fields:
            return _NAMED[kind]
        if kind == "free":
            return Free(**fields)
        if kind == "one_of":
            values = tuple(str(v) for v in _sequence(fields.pop("values", ())))
            aliases = {str(k): str(v) for k, v in dict(fields.pop("aliases", {})).items()}
            return OneOf(values, aliases=aliases, **fields)
        if kind == "top_n":
            return TopN(**fields)
        if kind == "client_address":
            key = fields.pop("hash_key", None)
            return ClientAddress(hash_key=key.encode() if isinstance(key, str) else key, **fields)
        if kind == "status_class" and not fields:
            return StatusClass()
        if kind == "categorize":
            rules = tuple(
                (str(category), tuple(str(k) for k in _sequence(keywords)))
                for category, keywords in dict(fields.pop("rules")).items()
            )
            return Categorize(rules, **fields)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{setting} ({exc.setting})", _redacted(raw), exc.accepted) from None
    except (TypeError, ValueError, KeyError) as exc:
        detail = str(exc).replace(str(raw.get("hash_key")), "<redacted>") if "hash_key" in raw else str(exc)
        raise ConfigurationError(setting, _redacted(raw), f"valid fields for policy {kind!r} ({detail})") from None
    raise ConfigurationError(setting, _redacted(raw), accepted)


def _sequence(raw: object) -> list[object]:
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise TypeError(f"expected a list, got {raw!r}")
    return list(raw)
