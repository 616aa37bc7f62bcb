"""tradetel's DogStatsD datagrams against the datadog package's own ``DogStatsd`` client, for the same metrics.

Each case sets the same environment for both: datadog's client reads it from the process environment,
tradetel from ``env=``. The client sends to one real UDP socket, tradetel to another; the test parses
both sides' datagrams and compares name, value, type, sample rate, tags (as sets), the entity id tag,
the container field (``|c:``) and the external data field (``|e:``). The intended differences, listed
in docs/backends/dogstatsd.md, are applied to the client's side before comparing, and nothing else.
"""

from __future__ import annotations

import dataclasses
import socket
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import tradetel
from tradetel.exporters import _origin, dogstatsd

base = pytest.importorskip("datadog.dogstatsd.base")  # a dev dependency: scripts/test installs it
container_module = pytest.importorskip("datadog.dogstatsd.container")

FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
LATENCY = {"exchange": "binance", "stage": "ack"}
OBSERVATIONS = (0.031, 0.032, 0.034, 0.045)  # one bucket, (0.025, 0.05]: tradetel sends their mean
CONTAINER = "3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f869860"
UNIFIED = {"DD_ENV": "env", "DD_SERVICE": "service", "DD_VERSION": "version"}
ALL_VARIABLES = (
    "DD_TAGS",
    "DATADOG_TAGS",
    "DD_ENTITY_ID",
    "DD_ENV",
    "DD_SERVICE",
    "DD_VERSION",
    "DD_EXTERNAL_ENV",
    "DD_ORIGIN_DETECTION_ENABLED",
)


@dataclass(frozen=True)
class Line:
    """One parsed DogStatsD line."""

    name: str
    value: float
    kind: str
    rate: float
    tags: frozenset[str]
    container: str | None
    external: str | None
    order: tuple[str, ...]  # the fields after the type, in the order written (the rate left out)

    @property
    def weight(self) -> int:
        return int(1 / self.rate)  # as the Agent and the statsd receiver count it: truncated


def parse(line: str) -> Line:
    """Fields as the DogStatsD protocol defines them; an unknown field fails the test."""
    head, kind, *fields = line.split("|")
    name, value = head.split(":")
    rate, tags, container, external = 1.0, frozenset[str](), None, None
    order = tuple(field[0] for field in fields if not field.startswith("@"))
    for field in fields:
        if field.startswith("@"):
            rate = float(field[1:])
        elif field.startswith("#"):
            tags = frozenset(field[1:].split(","))
        elif field.startswith("c:"):
            container = field[2:]
        elif field.startswith("e:"):
            external = field[2:]
        else:
            raise AssertionError(f"unknown field {field!r} in {line!r}")
    return Line(name, float(value), kind, rate, tags, container, external, order)


def _udp_receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.3)
    return sock


def _received(sock: socket.socket) -> list[Line]:
    lines = []
    while True:
        try:
            packet = sock.recv(65_536).decode()
        except TimeoutError:
            return [parse(line) for line in lines if line.startswith("trading.")]
        lines.extend(line for line in packet.split("\n") if line)


def _tags(attributes: Mapping[str, str]) -> list[str]:
    return [f"{key}:{value}" for key, value in attributes.items()]


def datadog_client_lines(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> list[Line]:
    """The reference: datadog's DogStatsd, configured by the environment alone, sending the workload."""
    for variable in ALL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    receiver = _udp_receiver()
    with receiver:
        client = base.DogStatsd(
            host="127.0.0.1", port=receiver.getsockname()[1], disable_telemetry=True, track_instance=False
        )
        client.increment("trading.orders.filled", 3, tags=_tags(FILL))
        client.gauge("trading.orders.pending", 2, tags=_tags({"exchange": "binance", "symbol": "BTC-USD"}))
        client.gauge("trading.account.equity", 10250.5, tags=_tags({"account": "main"}))
        for value in OBSERVATIONS:
            client.distribution("trading.orders.latency", value, tags=_tags(LATENCY))
        client.increment("trading.orders.latency.count", len(OBSERVATIONS), tags=_tags(LATENCY))
        client.increment("trading.orders.latency.sum", sum(OBSERVATIONS), tags=_tags(LATENCY))
        client.close_socket()
        return _received(receiver)


def tradetel_lines(env: Mapping[str, str]) -> list[Line]:
    """tradetel, configured by the same variables through ``env=``, recording the same workload."""
    receiver = _udp_receiver()
    with receiver:
        settings = {**env, "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{receiver.getsockname()[1]}"}
        with tradetel.configure(exporters="dogstatsd", export_interval=3600, env=settings) as tel:
            tel.orders.filled.add(3, **FILL)
            tel.orders.pending.add(2, exchange="binance", symbol="BTC-USD")
            tel.account.equity.set(10250.5, account="main")
            for value in OBSERVATIONS:
                tel.orders.latency.record(value, **LATENCY)
            tel.force_flush()
            return _received(receiver)  # before the final flush at shutdown sends the gauges again


def intended(lines: list[Line], env: Mapping[str, str]) -> list[Line]:
    """The client's lines with tradetel's documented differences applied; nothing else changes.

    - ``DD_TAGS`` is read (the client reads only ``DATADOG_TAGS``): its tags are added.
    - One ``env``/``service``/``version`` tag each: ``DD_ENV``... win over the same key in ``DD_TAGS``.
    - ``service`` defaults to the resource's ``service.name`` (``trading-bot``) when ``DD_SERVICE`` is unset.
    """
    extra = set(env.get("DD_TAGS", "").replace(",", " ").split()) if "DD_TAGS" in env else set()
    unified = {key for variable, key in UNIFIED.items() if env.get(variable)}
    out = []
    for line in lines:
        tags = set(line.tags) | extra
        tags = {t for t in tags if t.partition(":")[0] not in unified or t == _unified_tag(t, env)}
        if not env.get("DD_SERVICE") and not any(t.startswith("service:") for t in tags):
            tags.add("service:trading-bot")
        out.append(dataclasses.replace(line, tags=frozenset(tags)))
    return out


def _unified_tag(tag: str, env: Mapping[str, str]) -> str:
    key = tag.partition(":")[0]
    variable = next(v for v, k in UNIFIED.items() if k == key)
    return f"{key}:{env[variable]}"


def summarise(lines: list[Line]) -> dict[tuple[Any, ...], tuple[float, float]]:
    """Per series (name, type, tags, origin fields, field order): total weight and weighted sum of the values.

    The client sends one `d` line per observation; tradetel one per bucket with a weight. Counts and
    gauges have weight 1 and their value.
    """
    out: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in lines:
        key = (line.name, line.kind, line.tags, line.container, line.external, line.order)
        out[key][0] += line.weight
        out[key][1] += line.weight * line.value
    return {key: (weight, round(total, 12)) for key, (weight, total) in out.items()}


CASES = {
    "nothing": {},
    "unified": {"DD_ENV": "paper", "DD_SERVICE": "grid-bot", "DD_VERSION": "1.4.0"},
    "datadog_tags": {"DATADOG_TAGS": "team:quant,desk:eu", "DD_ENV": "live"},
    "dd_tags_spaces": {"DD_TAGS": "team:quant desk:eu", "DD_SERVICE": "grid-bot"},
    "dd_tags_commas_and_unified": {"DD_TAGS": "team:quant,env:staging,region:eu", "DD_ENV": "paper"},
    "entity_id": {"DD_ENTITY_ID": "a1b2c3-pod-uid", "DD_VERSION": "2.0"},
    "external_env": {"DD_EXTERNAL_ENV": "it-false,cn-bot,pu-a1b2c3", "DD_ENV": "paper"},
    "everything": {
        "DATADOG_TAGS": "team:quant",
        "DD_ENTITY_ID": "a1b2c3-pod-uid",
        "DD_ENV": "paper",
        "DD_SERVICE": "grid-bot",
        "DD_VERSION": "1.4.0",
        "DD_EXTERNAL_ENV": "it-false,cn-bot,pu-a1b2c3",
    },
    "origin_detection_off": {"DD_ORIGIN_DETECTION_ENABLED": "false", "DD_ENV": "paper"},
}


@pytest.fixture(params=["host_namespace", "private_namespace"])
def cgroups(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake cgroup files that both sides read: a container id in the file, or a cgroup directory's inode."""
    cgroup_file = tmp_path / "cgroup"
    mount = tmp_path / "mount"
    namespace = tmp_path / "ns"
    namespace.write_text("")
    if request.param == "host_namespace":
        cgroup_file.write_text(f"0::/system.slice/docker-{CONTAINER}.scope\n")
        expected = f"ci-{CONTAINER}"
        in_host = True
    else:
        cgroup_file.write_text("0::/\n")
        mount.mkdir()
        expected = f"in-{mount.stat().st_ino}"
        in_host = False
    paths = _origin.CgroupPaths(str(cgroup_file), str(mount), str(namespace))
    monkeypatch.setattr(dogstatsd, "container_id", lambda: _origin.container_id(paths))
    monkeypatch.setattr(_origin, "_in_host_namespace", lambda _paths: in_host)
    reader = container_module.Cgroup
    monkeypatch.setattr(reader, "CGROUP_PATH", str(cgroup_file))
    monkeypatch.setattr(reader, "CGROUP_MOUNT_PATH", str(mount))
    monkeypatch.setattr(reader, "_is_host_cgroup_namespace", lambda self: in_host)
    return expected


@pytest.mark.parametrize("case", list(CASES))
def test_same_datagrams_as_the_datadog_client(case: str, cgroups: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """For counters, gauges and a histogram, tradetel's datagrams carry what datadog's client sends, field by field.

    Names, values, types, tags as sets, entity id, container and external fields agree once the documented
    differences are applied; the histogram's weights add up to the client's observation count, and the
    weighted values to their sum.
    """
    env = CASES[case]
    reference = datadog_client_lines(env, monkeypatch)
    ours = tradetel_lines(env)
    assert len(reference) == 9  # the client sent everything: 3 lines, 4 observations, count and sum
    assert summarise(ours) == summarise(intended(reference, env))
    detection = env.get("DD_ORIGIN_DETECTION_ENABLED") != "false"
    assert {line.container for line in ours} == {cgroups if detection else None}
    assert {line.external for line in ours} == {env.get("DD_EXTERNAL_ENV")}
    (latency,) = [line for line in ours if line.kind == "d"]
    assert latency.weight == len(OBSERVATIONS)  # one weighted line for the bucket that got them all
