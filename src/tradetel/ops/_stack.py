"""``tradetel ops up``: the demo bot and a local Prometheus running the generated rules, until Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from ..catalog import Catalog
from ._model import Names, Objectives

__all__ = ["run_stack"]


def _prometheus_config(target: str, rules: Path, interval: str) -> str:
    return (
        f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
        f"rule_files:\n  - {rules}\n"
        "scrape_configs:\n"
        f"  - job_name: tradetel-demo\n    static_configs:\n      - targets: ['{target}']\n"
    )


def first_panel_queries(catalog: Catalog, objectives: Objectives, count: int = 5) -> list[tuple[str, str]]:
    """``(title, PromQL)`` of the first panels of the operations dashboard, for pasting into Prometheus."""
    from ._dashboards import panel_specs

    names = Names(catalog)
    panels = [panel for _, panel in panel_specs(objectives)["operations"]][:count]
    return [(panel.title, names.resolve(panel.queries[0][0]).replace("$__rate_interval", "1m")) for panel in panels]


def run_stack(
    *,
    port: int,
    prometheus_port: int,
    duration: float | None,
    speed: float,
    out: TextIO = sys.stdout,
) -> int:
    """Run the demo (and Prometheus when it is on PATH) until Ctrl-C, SIGTERM or ``duration``; stop both."""
    from .. import _demo
    from ..telemetry import configure
    from . import RULES, artefacts

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # "Ctrl-C to stop" holds even when started from a shell or supervisor that ignores SIGINT (a
    # background job of a non-interactive shell): Python keeps an ignored SIGINT ignored.
    previous_interrupt = signal.signal(signal.SIGINT, lambda *_: stop.set())
    workdir = Path(tempfile.mkdtemp(prefix="tradetel-ops-"))
    prometheus: subprocess.Popen[bytes] | None = None
    telemetry = configure(service_name="tradetel-demo", exporters="prometheus", prometheus_port=port)
    try:
        assert telemetry.prometheus_url is not None
        print(f"tradetel ops up: demo bot metrics at {telemetry.prometheus_url}", file=out, flush=True)
        binary = shutil.which("prometheus")
        if binary is None:
            print("tradetel ops up: no `prometheus` on PATH; running the demo only", file=out, flush=True)
        else:
            rules = workdir / "tradetel.rules.yml"
            rules.write_text(artefacts(telemetry.catalog, speed=speed)[RULES])
            target = telemetry.prometheus_url.split("://", 1)[1].split("/", 1)[0]
            (workdir / "prometheus.yml").write_text(_prometheus_config(target, rules, "5s" if speed == 1 else "1s"))
            prometheus = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(workdir / "prometheus.log").open("wb"),
                start_new_session=True,  # Ctrl-C reaches tradetel, which stops Prometheus in order
            )
            url = f"http://127.0.0.1:{prometheus_port}"
            print(f"tradetel ops up: Prometheus at {url} (alerts: {url}/alerts, rules: {url}/rules)", file=out)
            print("tradetel ops up: first panels of the operations dashboard, as PromQL:", file=out)
            for title, query in first_panel_queries(telemetry.catalog, Objectives()):
                print(f"  {title}: {query}", file=out)
            print(
                "tradetel ops up: Grafana: add this Prometheus as a data source, then Dashboards > New > Import "
                "the JSON files of ops/grafana/ (or `tradetel ops generate`)",
                file=out,
                flush=True,
            )
        print("tradetel ops up: Ctrl-C to stop", file=out, flush=True)
        bot = _demo.DemoBot(telemetry)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if prometheus is not None and prometheus.poll() is not None:
                log = (workdir / "prometheus.log").read_text(errors="replace")[-2000:]
                print(f"tradetel ops up: Prometheus exited ({prometheus.returncode}):\n{log}", file=out)
                return 1
            bot.tick(time.monotonic())
            stop.wait(0.05)
        print("tradetel ops up: stopping", file=out, flush=True)
        return 0
    finally:
        if prometheus is not None and prometheus.poll() is None:
            prometheus.terminate()
            try:
                prometheus.wait(10)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait()
        telemetry.shutdown()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_interrupt)
        shutil.rmtree(workdir, ignore_errors=True)
