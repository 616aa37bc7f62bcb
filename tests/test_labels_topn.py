"""The top-N guard under floods: heavy hitters stay, junk folds, memory and work per miss stay bounded."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tradetel.labels import TopN


def _flood(seed: int = 7, measurements: int = 300_000, junk: int = 100_000) -> list[str]:
    """A steady stream of BTC-USD and ETH-USD (one in five each) in a flood of junk symbols drawn from ``junk``."""
    rng = random.Random(seed)
    out = []
    for i in range(measurements):
        phase = i % 5
        out.append("BTC-USD" if phase == 0 else "ETH-USD" if phase == 1 else f"JUNK-{rng.randrange(junk):06d}")
    return out


def test_junk_flood_never_displaces_heavy_hitters() -> None:
    """300,000 values of which 100,000 unique junk symbols: every BTC-USD and ETH-USD keeps its own value."""
    normalize: Any = TopN(n=200).build()
    stream = _flood()
    recorded = [normalize(value) for value in stream]
    for symbol in ("BTC-USD", "ETH-USD"):
        assert recorded.count(symbol) == stream.count(symbol) == 60_000
    assert set(normalize.admitted()) >= {"BTC-USD", "ETH-USD"}
    assert normalize.folded == recorded.count("other")


def test_junk_flood_work_and_memory_stay_bounded() -> None:
    """Under the flood the admitted set and candidate table stay at their sizes, and few misses scan the set."""
    spec = TopN(n=200)
    normalize: Any = spec.build()
    stream = _flood()
    for value in stream:
        normalize(value)
    assert len(normalize.admitted()) == 200
    assert len(normalize._candidates) <= spec.candidates
    misses = normalize.folded + normalize.promotions
    assert normalize.scans < misses / 100, (normalize.scans, misses)
    assert normalize.promotions < 20  # junk rarely displaces junk: the set does not churn


def test_distinct_recorded_values_stay_bounded() -> None:
    """However many junk values arrive, the number of distinct recorded values stays near n (few series are created)."""
    normalize = TopN(n=50).build()
    recorded = {normalize(value) for value in _flood(seed=11, measurements=200_000, junk=100_000)}
    assert len(recorded) <= 50 + 10


def test_late_heavy_hitter_is_admitted_over_early_junk() -> None:
    """When junk filled the set first, a symbol that then trades steadily is admitted within a few measurements."""
    normalize = TopN(n=10).build()
    for i in range(10):
        normalize(f"junk-{i}")
    outputs = [normalize("SOL-USD") for _ in range(5)]
    assert outputs[:2] == ["other", "other"]
    assert outputs[-1] == "SOL-USD"
    assert normalize("SOL-USD") == "SOL-USD"


def test_moderate_hitter_is_admitted_during_a_flood() -> None:
    """A symbol with a 2 % share rises above unique junk even while the candidate table churns (Misra-Gries)."""
    rng = random.Random(3)
    normalize = TopN(n=20, tracked=256).build()
    for i in range(20):
        normalize(f"early-junk-{i}")
    admitted_at = None
    for i in range(50_000):
        value = "SOL-USD" if rng.random() < 0.02 else f"junk-{i}"
        if normalize(value) == "SOL-USD" and admitted_at is None:
            admitted_at = i
    assert admitted_at is not None
    assert normalize("SOL-USD") == "SOL-USD"


def test_similar_volumes_do_not_flap() -> None:
    """Two values competing for the last slot at similar volumes do not take turns: the admitted one stays."""
    normalize: Any = TopN(n=2).build()
    normalize("BTC-USD")
    normalize("ETH-USD")
    for _ in range(1000):
        normalize("BTC-USD")
        normalize("ETH-USD")
        normalize("SOL-USD")
    assert normalize.promotions <= 1


def test_value_overtaking_the_lightest_twice_over_is_admitted() -> None:
    """A candidate is admitted once its count exceeds twice the lightest admitted count, which then folds."""
    normalize: Any = TopN(n=2).build()
    for _ in range(10):
        normalize("A")
    for _ in range(4):
        normalize("B")
    recorded = [normalize("C") for _ in range(9)]
    assert recorded == ["other"] * 8 + ["C"]  # 9 > 2 x 4
    assert normalize("B") == "other"
    assert normalize("A") == "A"
    assert set(normalize.admitted()) == {"A", "C"}


@settings(max_examples=200)
@given(st.lists(st.sampled_from([f"v{i}" for i in range(12)]), max_size=400))
def test_candidate_counts_never_overstate(stream: list[str]) -> None:
    """A candidate's count is at most its true number of measurements, so junk is never promoted on credit."""
    normalize: Any = TopN(n=3, tracked=4).build()
    seen: Counter[str] = Counter()
    for value in stream:
        normalize(value)
        seen[value] += 1
        for candidate, count in normalize._candidates.items():
            assert count <= seen[candidate]
        assert len(normalize._candidates) <= 4
        assert len(normalize.admitted()) <= 3


def test_concurrent_callers() -> None:
    """Threads recording heavy hitters and junk at once get no errors and the admitted set never exceeds n."""
    normalize: Any = TopN(n=8, tracked=32).build()
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for i in range(20_000):
                value = "BTC-USD" if i % 3 == 0 else f"junk-{seed}-{rng.randrange(5_000)}"
                result = normalize(value)
                assert result in ("BTC-USD", "other") or result.startswith("junk-")
        except BaseException as exc:  # any failure in a thread must reach the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(normalize.admitted()) <= 8
    assert "BTC-USD" in normalize.admitted()


def test_non_string_values_and_truncation() -> None:
    """Non-string values are rendered before ranking; long values are truncated to max_length before ranking."""
    normalize = TopN(n=3, max_length=8).build()
    assert normalize(12345) == "12345"
    assert normalize("ABCDEFGHIJKL") == "ABCDEFGH"
    assert normalize("ABCDEFGHxyz") == "ABCDEFGH"  # same truncated value, same series
    assert normalize(["not", "hashable"]) == "['not', "
