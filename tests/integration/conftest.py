"""Real servers for integration tests: Prometheus, the OpenTelemetry Collector, the Etsy StatsD daemon.

Every server listens on 127.0.0.1 on a free port, logs to the test's temporary directory and is stopped by
the fixture that started it. Factories let a test start what it needs:

    def test_scrape(prometheus_server, collector, collector_env):
        otel = collector("gateway.yaml", collector_env())
        prom = prometheus_server({"collector": otel.metrics_url})
        prom.wait_for_scrape("collector")
        assert prom.value('sum(trading_orders_filled_total)') == 3
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = REPO / "collector"
STARTUP_TIMEOUT = 60.0


def pick_free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now, for TCP and for UDP (statsd ports are UDP)."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both TCP and UDP on 127.0.0.1")


@pytest.fixture
def free_ports() -> Callable[[], int]:
    """A factory of free 127.0.0.1 ports, for tests that need several."""
    return pick_free_port


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Process:
    """A started server process whose output goes to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            pytest.fail(f"{self.name} exited with code {code}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


@pytest.fixture
def processes() -> Iterator[Callable[..., Process]]:
    """Start processes for one test; every one of them is stopped at teardown."""
    started: list[Process] = []

    def start(
        name: str, argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Process:
        handle = log.open("wb")
        full_env = {**os.environ, **(env or {})}
        popen = subprocess.Popen(list(argv), stdout=handle, stderr=subprocess.STDOUT, env=full_env, cwd=cwd)
        handle.close()
        process = Process(name, popen, log)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def wait_until(
    condition: Callable[[], Any],
    what: str,
    timeout: float = 30.0,
    interval: float = 0.2,
    *,
    alive: Process | None = None,
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive.check_alive()
        try:
            result = condition()
        except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    detail = f" (last error: {last_error!r})" if last_error else ""
    logs = f"\n{alive.name} log:\n{alive.log_tail()}" if alive is not None else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{detail}{logs}")


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    """``wait_until(condition, what, timeout=30)``: poll until truthy, else fail naming ``what``."""
    return wait_until


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- Prometheus -----------------------------------------------------------------------------------


@dataclass
class PrometheusServer:
    """A running Debian ``prometheus`` with a PromQL client."""

    url: str
    jobs: Mapping[str, str]
    process: Process

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        body = json.loads(http_get(f"{self.url}/api/v1/{path}?{query}"))
        if body.get("status") != "success":
            raise ValueError(f"Prometheus API error: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of ``expr`` (a list of ``{"metric": labels, "value": [t, "v"]}``)."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise ValueError(f"{expr} gives a {data['resultType']}, not a vector")
        return list(data["result"])

    def value(self, expr: str) -> float:
        """The single sample ``expr`` evaluates to; fails the test if there is not exactly one."""
        result = self.query(expr)
        if len(result) != 1:
            pytest.fail(f"{expr} returned {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1])

    def labels(self, expr: str) -> list[dict[str, str]]:
        return [dict(sample["metric"]) for sample in self.query(expr)]

    def wait_for_scrape(self, job: str, *, after: float | None = None, timeout: float = 30.0) -> None:
        """Wait until ``job`` was scraped successfully at or after ``after`` (default: now)."""
        since = time.time() if after is None else after
        expr = f'timestamp(up{{job="{job}"}} == 1)'

        def scraped() -> bool:
            return any(float(s["value"][1]) >= since for s in self.query(expr))

        wait_until(scraped, f"a successful scrape of job {job!r} ({self.jobs.get(job)})", timeout, alive=self.process)

    def wait_for_value(self, expr: str, expected: float, *, timeout: float = 30.0) -> float:
        """Poll until ``expr`` has one sample equal to ``expected`` (data reaches Prometheus asynchronously)."""
        seen: list[Any] = []

        def matches() -> bool:
            result = self.query(expr)
            seen[:] = result
            return len(result) == 1 and float(result[0]["value"][1]) == expected

        try:
            wait_until(matches, f"{expr} == {expected}", timeout, alive=self.process)
        except pytest.fail.Exception:
            pytest.fail(f"{expr} never became {expected}; last result {seen}")
        return expected


def _scrape_config(job: str, target_url: str, interval: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(target_url if "://" in target_url else f"http://{target_url}")
    return {
        "job_name": job,
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "metrics_path": parts.path or "/metrics",
        "scheme": parts.scheme,
        "static_configs": [{"targets": [parts.netloc]}],
    }


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("prometheus not found: scripts/test installs the Debian prometheus package")
    return path


@pytest.fixture
def prometheus_server(
    prometheus_binary: str, processes: Callable[..., Process], tmp_path: Path
) -> Callable[..., PrometheusServer]:
    """Factory: ``prometheus_server({"job": "http://127.0.0.1:PORT/metrics"}, scrape_interval="1s")``.

    A list of targets names the jobs ``target0``, ``target1``... ``feature_flags`` go to
    ``--enable-feature`` (``native-histograms`` for the collector's exponential histograms).
    ``scrape_options`` maps a job to what its scrape config adds (``basic_auth``, ``tls_config``...).
    ``rule_files`` are evaluated every scrape interval. ``extra_args`` go to the command line as they are
    (``--web.enable-remote-write-receiver``).
    """
    count = 0

    def start(
        scrape_targets: Mapping[str, str] | Sequence[str],
        *,
        scrape_interval: str = "1s",
        feature_flags: Sequence[str] = (),
        scrape_options: Mapping[str, Mapping[str, Any]] | None = None,
        rule_files: Sequence[Path] = (),
        extra_args: Sequence[str] = (),
    ) -> PrometheusServer:
        nonlocal count
        count += 1
        jobs = (
            dict(scrape_targets)
            if isinstance(scrape_targets, Mapping)
            else {f"target{i}": target for i, target in enumerate(scrape_targets)}
        )
        home = tmp_path / f"prometheus{count}"
        home.mkdir()
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": [
                {**_scrape_config(job, url, scrape_interval), **(scrape_options or {}).get(job, {})}
                for job, url in jobs.items()
            ],
            "rule_files": [str(path) for path in rule_files],
        }
        (home / "prometheus.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
        port = pick_free_port()
        argv = [
            prometheus_binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        argv += [f"--enable-feature={flag}" for flag in feature_flags]
        argv += extra_args
        process = processes("prometheus", argv, home / "prometheus.log")
        server = PrometheusServer(f"http://127.0.0.1:{port}", jobs, process)
        # The port first: a refused urllib connection leaves a socket for the garbage collector to warn about.
        wait_until(lambda: tcp_open(port), "Prometheus to listen", STARTUP_TIMEOUT, alive=process)
        wait_until(lambda: http_get(f"{server.url}/-/ready"), "Prometheus to be ready", STARTUP_TIMEOUT, alive=process)
        return server

    return start


# --- OpenTelemetry Collector ----------------------------------------------------------------------


def _build_collector(target: str) -> Path:
    result = subprocess.run(
        ["bash", str(COLLECTOR_DIR / "build.sh"), target], capture_output=True, text=True, timeout=3600
    )
    if result.returncode != 0:
        pytest.fail(f"collector/build.sh {target} failed:\n{result.stderr[-4000:]}")
    path = Path(result.stdout.strip().splitlines()[-1])
    if not os.access(path, os.X_OK):
        pytest.fail(f"collector/build.sh {target} printed {path}, which is not an executable")
    return path


@pytest.fixture(scope="session")
def collector_binaries() -> Callable[[str], Path]:
    """``collector_binaries("core")`` / ``("datadog")``: the distribution built by collector/build.sh (cached)."""
    built: dict[str, Path] = {}

    def get(distribution: str = "core") -> Path:
        if distribution not in built:
            built[distribution] = _build_collector(distribution)
        return built[distribution]

    return get


COLLECTOR_PORT_VARIABLES = (
    "OTLP_GRPC_PORT",
    "OTLP_HTTP_PORT",
    "STATSD_PORT",
    "PROMETHEUS_EXPORTER_PORT",
    "HEALTH_CHECK_PORT",
    "TELEMETRY_PORT",
)


def loopback_only(env: Mapping[str, str] | None) -> dict[str, str]:
    """``env`` plus settings that keep a collector's traffic on 127.0.0.1.

    The DataDog exporter probes the EC2, GCE and Azure metadata services (169.254.169.254) at start-up
    whatever its config says. Tests must never send traffic off loopback, so the probes are switched off
    where a switch exists and sent to a closed local proxy port otherwise. The DataDog client honours
    ``NO_PROXY`` only with an exact ``host:port``, so every local endpoint in ``env`` is listed.
    """
    result = dict(env or {})
    local = {"127.0.0.1", "localhost"}
    for value in result.values():
        match = re.match(r"^https?://(127\.0\.0\.1|localhost):(\d+)", value)
        if match:
            local.add(f"{match.group(1)}:{match.group(2)}")
    result.update(
        AWS_EC2_METADATA_DISABLED="true",
        GCE_METADATA_HOST="127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        NO_PROXY=",".join(sorted(local)),
        no_proxy=",".join(sorted(local)),
    )
    return result


@pytest.fixture
def collector_env() -> Callable[..., dict[str, str]]:
    """``collector_env(**overrides)``: the environment the shipped configs read, every port a free one.

    The statsd receiver aggregates every second and batches leave after 100 ms, so data shows up fast.
    """

    def make(**overrides: str) -> dict[str, str]:
        env = {name: str(pick_free_port()) for name in COLLECTOR_PORT_VARIABLES}
        env.update(
            COLLECTOR_LISTEN_HOST="127.0.0.1",
            STATSD_AGGREGATION_INTERVAL="1s",
            BATCH_TIMEOUT="100ms",
            GATEWAY_OTLP_ENDPOINT=f"127.0.0.1:{pick_free_port()}",
        )
        env.update(overrides)
        return env

    return make


@dataclass
class Collector:
    """A running collector: its config, the ports handed to it through the environment, its log."""

    config: Path
    env: Mapping[str, str]
    process: Process
    ports: Mapping[str, int] = field(default_factory=dict)

    def log_tail(self, lines: int = 80) -> str:
        return self.process.log_tail(lines)

    def address(self, port_variable: str) -> str:
        """``127.0.0.1:PORT`` for one of the port variables handed to the collector."""
        return f"127.0.0.1:{self.ports[port_variable]}"

    def otlp_endpoint(self, protocol: str) -> str:
        """The base URL an exporter is given for ``protocol`` (grpc or http/protobuf; HTTP appends /v1/metrics)."""
        port_variable = "OTLP_GRPC_PORT" if protocol == "grpc" else "OTLP_HTTP_PORT"
        return f"http://{self.address(port_variable)}"

    @property
    def metrics_url(self) -> str:
        """Where the collector's Prometheus exporter serves."""
        return f"http://{self.address('PROMETHEUS_EXPORTER_PORT')}/metrics"

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Samples named ``name`` on the collector's Prometheus exporter right now, whose labels include ``labels``."""
        from prometheus_client.parser import text_string_to_metric_families

        text = http_get(self.metrics_url).decode()
        return [
            (dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]

    def total(self, name: str, **labels: str) -> float:
        """The sum of :meth:`samples` (0 when there are none)."""
        return sum(value for _, value in self.samples(name, **labels))


@pytest.fixture
def collector(
    collector_binaries: Callable[[str], Path], processes: Callable[..., Process], tmp_path: Path
) -> Callable[..., Collector]:
    """Factory: ``collector("agent.yaml", env={...}, distribution="core")`` runs a shipped config.

    The config is read from ``collector/``; ``env`` (endpoints, API keys...) is added to the process
    environment. ``wait_ports`` are TCP ports that must accept connections before the collector counts as
    started; in any case the fixture waits for the collector's "Everything is ready" log line.
    """
    count = 0

    def start(
        config_name: str,
        env: Mapping[str, str] | None = None,
        *,
        distribution: str = "core",
        wait_ports: Sequence[int] = (),
        args: Sequence[str] = (),
    ) -> Collector:
        nonlocal count
        count += 1
        config = COLLECTOR_DIR / config_name
        if not config.is_file():
            pytest.fail(f"collector config {config} does not exist")
        binary = collector_binaries(distribution)
        log = tmp_path / f"collector{count}-{config.stem}.log"
        process = processes(
            f"collector ({config_name})", [str(binary), f"--config={config}", *args], log, env=loopback_only(env)
        )
        wait_until(
            lambda: "Everything is ready" in log.read_text(errors="replace"),
            f"{config_name} to start",
            STARTUP_TIMEOUT,
            alive=process,
        )
        for port in wait_ports:
            wait_until(lambda p=port: tcp_open(p), f"{config_name} to listen on {port}", STARTUP_TIMEOUT, alive=process)
        ports = {k: int(v) for k, v in (env or {}).items() if k.endswith("_PORT") and v.isdigit()}
        return Collector(config, dict(env or {}), process, ports)

    return start


# --- an HTTP server standing in for the DataDog intake ---------------------------------------------


@dataclass
class CapturedRequest:
    """One request the capture server received, its body decompressed."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class CaptureServer:
    """Answers like the DataDog API (key valid, payloads accepted) and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[CapturedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def bodies(self, path_prefix: str) -> list[bytes]:
        with self._lock:
            return [r.body for r in self.requests if r.path.startswith(path_prefix)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = _decompress(raw, (self.headers.get("Content-Encoding") or "").lower())
                with capture._lock:
                    capture.requests.append(CapturedRequest(self.command, self.path, dict(self.headers), body))
                answer = b'{"valid":true}' if "validate" in self.path else b"{}"
                self.send_response(200 if self.command == "GET" else 202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                self._record()

            def do_POST(self) -> None:
                self._record()

            def do_PUT(self) -> None:
                self._record()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
                pass

        return Handler


@pytest.fixture
def capture_server() -> Iterator[CaptureServer]:
    """An HTTP server on 127.0.0.1 standing in for the DataDog intake (the only form of it reachable here)."""
    server = CaptureServer()
    yield server
    server.close()


# --- Etsy StatsD ----------------------------------------------------------------------------------

ETSY_STATSD_VERSION = "0.9.0"

# A StatsD backend that appends every flush as one JSON line: counters, gauges, timers.
_JSON_BACKEND = """
const fs = require('fs');
exports.init = function (startupTime, config, events) {
  const path = config.jsonLines.path;
  events.on('flush', function (timestamp, metrics) {
    const out = {timestamp: timestamp, counters: metrics.counters, gauges: metrics.gauges,
                 timer_data: metrics.timer_data};
    fs.appendFileSync(path, JSON.stringify(out) + '\\n');
  });
  return true;
};
"""


@dataclass
class EtsyStatsd:
    """A running Etsy ``statsd`` daemon whose flushes are read back as JSON."""

    port: int
    flushes_path: Path
    process: Process

    def flushes(self) -> list[dict[str, Any]]:
        if not self.flushes_path.exists():
            return []
        return [json.loads(line) for line in self.flushes_path.read_text().splitlines() if line.strip()]

    def counters(self) -> dict[str, float]:
        """Counters summed over every flush so far (StatsD resets counters at each flush)."""
        totals: dict[str, float] = {}
        for flush in self.flushes():
            for key, value in flush["counters"].items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def gauges(self) -> dict[str, float]:
        """The last value of every gauge seen in any flush."""
        latest: dict[str, float] = {}
        for flush in self.flushes():
            latest.update(flush["gauges"])
        return latest


@pytest.fixture(scope="session")
def etsy_statsd_package(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The npm ``statsd`` package, installed once into the pytest cache folder (ignored by git).

    Without the cache plugin (``-p no:cacheprovider``) it is installed into a temporary folder instead.
    """
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("node and npm are needed for the Etsy statsd daemon (Debian packages nodejs and npm)")
    cache = getattr(request.config, "cache", None)
    prefix = Path(cache.mkdir("etsy-statsd")) if cache is not None else tmp_path_factory.mktemp("etsy-statsd")
    stats = prefix / "node_modules" / "statsd" / "stats.js"
    if not stats.exists():
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                f"statsd@{ETSY_STATSD_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0 or not stats.exists():
            pytest.fail(f"npm install statsd@{ETSY_STATSD_VERSION} failed:\n{result.stderr[-3000:]}")
    return stats


@pytest.fixture
def etsy_statsd(
    etsy_statsd_package: Path, processes: Callable[..., Process], tmp_path: Path
) -> Callable[..., EtsyStatsd]:
    """Factory: ``etsy_statsd(flush_interval_ms=500)`` runs the daemon on a free 127.0.0.1 UDP port."""

    def start(flush_interval_ms: int = 500) -> EtsyStatsd:
        home = tmp_path / "etsy-statsd"
        home.mkdir(exist_ok=True)
        backend = home / "json_lines_backend.js"
        backend.write_text(_JSON_BACKEND)
        port, mgmt_port = pick_free_port(), pick_free_port()
        flushes = home / "flushes.jsonl"
        config = {
            "address": "127.0.0.1",
            "port": port,
            "mgmt_address": "127.0.0.1",
            "mgmt_port": mgmt_port,
            "flushInterval": flush_interval_ms,
            "backends": [str(backend)],
            "jsonLines": {"path": str(flushes)},
            "deleteIdleStats": False,
        }
        config_path = home / "config.js"
        config_path.write_text("(" + json.dumps(config) + ")\n")
        node = shutil.which("node") or "node"
        process = processes(
            "statsd",
            [node, str(etsy_statsd_package), str(config_path)],
            home / "statsd.log",
            cwd=etsy_statsd_package.parent,
        )
        wait_until(lambda: tcp_open(mgmt_port), "the statsd daemon to start", STARTUP_TIMEOUT, alive=process)
        return EtsyStatsd(port, flushes, process)

    return start


# --- a workload with known totals -----------------------------------------------------------------

LATENCY_VALUES = (0.004, 0.03, 0.03, 0.04, 0.2, 0.7, 3.0)


@dataclass(frozen=True)
class Workload:
    """Records a known mix of instruments in two phases; the expected totals after both are below.

    A counter (two series, 7 and 2), an up-down counter (+5 then -2), a gauge (last value 10250.5) and a
    histogram of order latencies whose median, 0.04 s, lies in the bucket (0.025, 0.05].
    """

    filled: Mapping[tuple[str, str, str], int] = field(
        default_factory=lambda: {("binance", "BTC-USD", "buy"): 7, ("kraken", "ETH-USD", "sell"): 2}
    )
    pending: int = 3
    equity: float = 10250.5
    latency_count: int = len(LATENCY_VALUES)
    latency_sum: float = sum(LATENCY_VALUES)
    median_bucket: tuple[float, float] = (0.025, 0.05)

    def record(self, tel: Any, phase: int) -> None:
        """Phase 1 and phase 2 together give the totals above."""
        if phase == 1:
            tel.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
            tel.orders.filled.add(2, exchange="kraken", symbol="ETH-USD", side="sell")
            tel.orders.pending.add(5, exchange="binance", symbol="BTC-USD")
            tel.account.equity.set(10_000, account="main")
            for value in LATENCY_VALUES[:3]:
                tel.orders.latency.record(value, exchange="binance", stage="ack")
        else:
            tel.orders.filled.add(4, exchange="binance", symbol="BTC-USD", side="buy")
            tel.orders.pending.add(-2, exchange="binance", symbol="BTC-USD")
            tel.account.equity.set(self.equity, account="main")
            for value in LATENCY_VALUES[3:]:
                tel.orders.latency.record(value, exchange="binance", stage="ack")

    def wait_for_totals(self, prom: PrometheusServer, job: str, namespace: str = "trading") -> None:
        """Wait until Prometheus holds the phase-2 totals of the counter, up-down counter and gauge for ``job``."""
        filled = f"{namespace}_orders_filled_total"
        for (exchange, symbol, side), total in self.filled.items():
            series = f'{filled}{{job="{job}",exchange="{exchange}",symbol="{symbol}",side="{side}"}}'
            prom.wait_for_value(f"sum({series})", total)
        prom.wait_for_value(f'sum({filled}{{job="{job}"}})', sum(self.filled.values()))
        pending = f'{namespace}_orders_pending{{job="{job}",exchange="binance",symbol="BTC-USD"}}'
        prom.wait_for_value(f"sum({pending})", self.pending)
        prom.wait_for_value(f'sum({namespace}_account_equity{{job="{job}",account="main"}})', self.equity)

    def check_classic_histogram(self, prom: PrometheusServer, job: str, name: str, *, exact_sum: bool = True) -> float:
        """``_count`` (and ``_sum``) exact, the median from the buckets inside the right bucket; returns the median."""
        selector = f'job="{job}",exchange="binance",stage="ack"'
        prom.wait_for_value(f"sum({name}_count{{{selector}}})", self.latency_count)
        if exact_sum:
            assert prom.value(f"sum({name}_sum{{{selector}}})") == pytest.approx(self.latency_sum, rel=1e-12)
        median = prom.value(f"histogram_quantile(0.5, sum by (le) ({name}_bucket{{{selector}}}))")
        low, high = self.median_bucket
        assert low < median <= high
        return median


@pytest.fixture
def workload() -> Workload:
    return Workload()
