"""Label policies: how attribute values are normalised before they are recorded.

A policy is a small frozen value object (data, so that the catalog and config
files can state it); ``policy.build()`` returns a fresh normaliser, a callable
that maps any value to a bounded string. Normalisers that fold values count
how many they folded in ``normaliser.folded``, which tradetel exports as
``tradetel.attributes.folded``.

Example::

    >>> side = OneOf(("buy", "sell")).build()
    >>> side("BUY"), side("short")
    ('buy', 'other')
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
    "to_text",
]

OTHER = "other"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


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
    """A policy spec: immutable data that builds a normaliser."""

    def build(self) -> Normalizer: ...


def to_text(value: object, max_length: int = 64) -> str:
    """Render any attribute value as a printable string of at most ``max_length`` characters."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "none"
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "replace")
    else:
        enum_value = getattr(value, "value", None)
        text = enum_value if isinstance(enum_value, str) else str(value)
    if len(text) > max_length:
        text = text[:max_length]
    if _CONTROL.search(text):
        text = _CONTROL.sub("_", text)
    return text


def _slug(text: str) -> str:
    return _NON_WORD.sub("_", text.lower()).strip("_")


class _Normalizer:
    """Base of the built normalisers: a folded counter and a callable."""

    __slots__ = ("folded",)
    cacheable = True

    def __init__(self) -> None:
        self.folded = 0


@dataclass(frozen=True, slots=True)
class Free:
    """Any value, rendered as text, control characters replaced, truncated to ``max_length``."""

    max_length: int = 64

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ConfigurationError("Free.max_length", self.max_length, "an integer >= 1")

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


@dataclass(frozen=True, slots=True)
class OneOf:
    """An enumeration: values outside ``values`` (after lower-casing and aliases) become ``fallback``.

    Example: ``OneOf(("buy", "sell"), aliases={"long": "buy", "short": "sell"})``.
    """

    values: tuple[str, ...]
    fallback: str = OTHER
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigurationError("OneOf.values", self.values, "a non-empty tuple of strings")
        for target in self.aliases.values():
            if target not in self.values:
                raise ConfigurationError("OneOf.aliases", dict(self.aliases), f"aliases that map onto {self.values}")

    def build(self) -> Normalizer:
        return _OneOfNormalizer(self)


class _OneOfNormalizer(_Normalizer):
    __slots__ = ("_fallback", "_lookup")

    def __init__(self, spec: OneOf) -> None:
        super().__init__()
        self._lookup = {v.lower(): v for v in spec.values}
        self._lookup.update({k.lower(): v for k, v in spec.aliases.items()})
        self._fallback = spec.fallback

    def __call__(self, value: object) -> str:
        found = self._lookup.get(to_text(value).strip().lower())
        if found is None:
            self.folded += 1
            return self._fallback
        return found


@dataclass(frozen=True, slots=True)
class Categorize:
    """Free text mapped to canonical categories by keyword, first match wins.

    ``rules`` is a sequence of ``(category, keywords)``; a value that already is
    a category name maps to itself; anything unmatched becomes ``fallback``.
    """

    rules: tuple[tuple[str, tuple[str, ...]], ...]
    fallback: str = OTHER

    def build(self) -> Normalizer:
        return _CategorizeNormalizer(self)


class _CategorizeNormalizer(_Normalizer):
    __slots__ = ("_categories", "_fallback", "_rules")

    def __init__(self, spec: Categorize) -> None:
        super().__init__()
        self._rules = spec.rules
        self._categories = frozenset(c for c, _ in spec.rules) | {spec.fallback}
        self._fallback = spec.fallback

    def __call__(self, value: object) -> str:
        text = to_text(value, 256).lower()
        slug = _slug(text)
        if slug in self._categories:
            return slug
        for category, keywords in self._rules:
            for keyword in keywords:
                if keyword in text:
                    return category
        self.folded += 1
        return self._fallback


REJECTION_REASON = Categorize(
    (
        ("post_only_cross", ("post_only", "post-only", "post only", "would cross", "would take")),
        ("insufficient_funds", ("insufficient", "balance", "margin", "funds")),
        ("limit_exceeded", ("limit", "max")),
        ("cooldown_active", ("cooldown", "spacing", "too soon")),
        ("exposure_cap", ("exposure", "cap")),
        ("size_constraint", ("size", "notional", "min_qty", "lot", "precision", "step")),
        ("circuit_breaker", ("circuit", "breaker")),
        ("regime_block", ("regime", "volatility")),
        ("kill_switch_or_stop", ("kill", "stop")),
        ("risk", ("risk",)),
        ("invalid_order", ("invalid", "spec", "validation", "symbol", "price")),
        ("timeout", ("timeout", "timed out")),
        ("exchange_error", ("exchange", "server", "unavailable", "maintenance")),
    )
)
"""Order rejection reasons (the categories of reference 004, plus post-only and validation)."""

NO_TRADE_REASON = Categorize(
    (
        ("no_signal", ("no signal", "no_signal", "no setup", "flat")),
        ("low_confidence", ("confidence", "score", "threshold")),
        ("cooldown_active", ("cooldown", "spacing", "too soon")),
        ("risk_gate", ("risk", "gate", "exposure", "drawdown", "limit")),
        ("circuit_breaker", ("circuit", "breaker", "kill")),
        ("regime_block", ("regime", "volatility")),
        ("session_closed", ("session", "market closed", "weekend", "hours")),
        ("spread_too_wide", ("spread",)),
        ("stale_data", ("stale", "lag", "outdated")),
        ("insufficient_funds", ("insufficient", "balance", "funds")),
    )
)
"""Reasons a strategy cycle decided not to trade."""

ERROR_TYPE = Categorize(
    (
        ("timeout", ("timeout", "timed out")),
        ("rate_limit", ("429", "rate", "too many requests", "ddos")),
        ("auth_error", ("401", "403", "auth", "permission", "signature", "api key", "apikey")),
        ("not_found", ("404", "not found", "notfound")),
        ("server_error", ("500", "502", "503", "504", "server", "unavailable", "maintenance")),
        ("connection_error", ("connection", "network", "socket", "dns", "refused", "reset")),
        ("invalid_request", ("400", "invalid", "bad request", "badrequest")),
    )
)
"""Exchange and API error types (reference 004's categories, plus invalid_request)."""


@dataclass(frozen=True, slots=True)
class StatusClass:
    """HTTP status codes folded to their class: ``404`` → ``4xx``; anything else → ``other``."""

    def build(self) -> Normalizer:
        return _StatusClassNormalizer()


class _StatusClassNormalizer(_Normalizer):
    __slots__ = ()

    def __call__(self, value: object) -> str:
        text = to_text(value, 16).strip()
        if len(text) == 3 and text.isdigit() and text[0] in "12345":
            return text[0] + "xx"
        if len(text) == 3 and text[0] in "12345" and text[1:].lower() == "xx":
            return text.lower()
        self.folded += 1
        return OTHER


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """Client IP addresses folded to a network prefix, or to a keyed hash when ``hash_key`` is set.

    Raw client addresses never reach a backend: IPv4 → ``/ipv4_prefix``
    network, IPv6 → ``/ipv6_prefix`` network; values that are not addresses
    become ``invalid``.
    """

    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    hash_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.ipv4_prefix <= 32:
            raise ConfigurationError("ClientAddress.ipv4_prefix", self.ipv4_prefix, "an integer from 0 to 32")
        if not 0 <= self.ipv6_prefix <= 128:
            raise ConfigurationError("ClientAddress.ipv6_prefix", self.ipv6_prefix, "an integer from 0 to 128")

    def build(self) -> Normalizer:
        return _ClientAddressNormalizer(self)


class _ClientAddressNormalizer(_Normalizer):
    __slots__ = ("_key", "_v4", "_v6")

    def __init__(self, spec: ClientAddress) -> None:
        super().__init__()
        self._v4 = spec.ipv4_prefix
        self._v6 = spec.ipv6_prefix
        self._key = spec.hash_key

    def __call__(self, value: object) -> str:
        text = to_text(value, 64).strip()
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            self.folded += 1
            return "invalid"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self._key is not None:
            digest = hmac.new(self._key, address.packed, hashlib.sha256).hexdigest()
            return "h:" + digest[:16]
        prefix = self._v4 if address.version == 4 else self._v6
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True, slots=True)
class TopN:
    """An open set (symbols, strategies) kept to its ``n`` heaviest values; the tail folds into ``fallback``.

    Values are admitted while there is room; once full, a newcomer is admitted
    only when its running count overtakes the lightest admitted value, so a
    flood of one-off junk values never displaces a steady heavy hitter.
    """

    n: int = 100
    fallback: str = OTHER
    max_length: int = 64
    tracked: int = 1024

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigurationError("TopN.n", self.n, "an integer >= 1")
        if self.tracked < self.n:
            raise ConfigurationError("TopN.tracked", self.tracked, f"an integer >= n ({self.n})")

    def build(self) -> Normalizer:
        return _TopNNormalizer(self)


class _TopNNormalizer(_Normalizer):
    """Space-saving style guard: admitted values plus a bounded table of candidates."""

    __slots__ = ("_admitted", "_candidates", "_fallback", "_lock", "_max_length", "_n", "_tracked")
    cacheable = False

    def __init__(self, spec: TopN) -> None:
        super().__init__()
        self._n = spec.n
        self._tracked = spec.tracked
        self._fallback = spec.fallback
        self._max_length = spec.max_length
        self._admitted: dict[str, int] = {}
        self._candidates: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        text = to_text(value, self._max_length)
        admitted = self._admitted
        if text in admitted:
            admitted[text] += 1  # approximate under races; only ranks values
            return text
        with self._lock:
            return self._admit(text)

    def _admit(self, text: str) -> str:
        admitted = self._admitted
        if text in admitted:
            return text
        if len(admitted) < self._n:
            admitted[text] = 1
            return text
        candidates = self._candidates
        count = candidates.get(text, 0) + 1
        lightest = min(admitted, key=admitted.__getitem__)
        if count > admitted[lightest]:
            # Promote; the demoted value's future measurements fold to the fallback.
            del candidates[text]
            candidates[lightest] = admitted.pop(lightest)
            admitted[text] = count
            self._trim(candidates)
            return text
        candidates[text] = count
        self._trim(candidates)
        self.folded += 1
        return self._fallback

    def _trim(self, candidates: dict[str, int]) -> None:
        if len(candidates) > self._tracked:
            # Forget the oldest half of the candidates: bounded memory under a flood.
            for key in list(candidates)[: len(candidates) // 2]:
                del candidates[key]


Normalize = Callable[[object], str]


_NAMED: dict[str, LabelPolicy] = {
    "rejection_reason": REJECTION_REASON,
    "no_trade_reason": NO_TRADE_REASON,
    "error_type": ERROR_TYPE,
}


def policy_from_config(setting: str, raw: object) -> LabelPolicy:
    """Build a policy from a config-file value.

    Accepted forms: a name (``"rejection_reason"``, ``"no_trade_reason"``,
    ``"error_type"``, ``"status_class"``, ``"client_address"``, ``"free"``,
    ``"top_n"``) or a table with ``policy`` set to one of ``free``, ``one_of``,
    ``top_n``, ``client_address``, ``status_class``, ``categorize`` and that
    policy's fields (``max_length``, ``values``/``fallback``/``aliases``,
    ``n``, ``ipv4_prefix``/``ipv6_prefix``, ``rules`` as ``{category: [keywords]}``).
    """
    accepted = (
        "a policy name (rejection_reason, no_trade_reason, error_type, status_class, client_address, free, top_n) "
        "or a table with policy = free | one_of | top_n | client_address | status_class | categorize"
    )
    if isinstance(raw, str):
        raw = {"policy": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("policy"), str):
        raise ConfigurationError(setting, raw, accepted)
    fields = dict(raw)
    kind = str(fields.pop("policy"))
    try:
        if kind in _NAMED and not fields:
            return _NAMED[kind]
        if kind == "free":
            return Free(**fields)
        if kind == "one_of":
            values = tuple(str(v) for v in fields.pop("values", ()))
            aliases = {str(k): str(v) for k, v in dict(fields.pop("aliases", {})).items()}
            return OneOf(values, aliases=aliases, **fields)
        if kind == "top_n":
            return TopN(**fields)
        if kind == "client_address":
            key = fields.pop("hash_key", None)
            return ClientAddress(hash_key=key.encode() if isinstance(key, str) else None, **fields)
        if kind == "status_class" and not fields:
            return StatusClass()
        if kind == "categorize":
            rules = tuple((str(c), tuple(str(k).lower() for k in kws)) for c, kws in dict(fields.pop("rules")).items())
            return Categorize(rules, **fields)
    except ConfigurationError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigurationError(setting, raw, f"valid fields for policy {kind!r} ({exc})") from None
    raise ConfigurationError(setting, raw, accepted)
