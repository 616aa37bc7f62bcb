"""The ``tradetel`` command: ``catalog``, ``demo``, ``ops``, ``--version``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from ._version import __version__
from .errors import ConfigurationError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradetel", description="OpenTelemetry metrics for trading bots.")
    parser.add_argument("--version", action="version", version=f"tradetel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    catalog = commands.add_parser("catalog", help="print the instrument catalog")
    catalog.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    catalog.add_argument("--namespace", help="show names under this namespace instead of 'trading'")

    demo = commands.add_parser(
        "demo",
        help="run a simulated, instrumented trading bot",
        description="Run a simulated trading bot instrumented with tradetel. Settings not given here come from "
        "the OTEL_*/DD_*/TRADETEL_* environment variables.",
    )
    demo.add_argument("--duration", type=float, default=None, help="stop after SECONDS (default: until Ctrl-C)")
    demo.add_argument("--exporters", help="comma-separated: prometheus, otlp, dogstatsd, console (default prometheus)")
    demo.add_argument("--host", help="Prometheus endpoint host (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="Prometheus endpoint port (default 9464)")
    demo.add_argument(
        "--service-name",
        help="service.name (default OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, DD_SERVICE, the file, tradetel-demo)",
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed for a reproducible run")
    demo.add_argument("--quiet", action="store_true", help="no live summary")

    from .ops._cli import add_parser as add_ops

    add_ops(commands)
    return parser


def _catalog(args: argparse.Namespace) -> int:
    from ._docs import catalog_json, catalog_markdown, catalog_table
    from .catalog import DEFAULT_CATALOG

    catalog = DEFAULT_CATALOG.with_namespace(args.namespace) if args.namespace else DEFAULT_CATALOG
    render = {"table": catalog_table, "markdown": catalog_markdown, "json": catalog_json}[args.format]
    print(render(catalog))
    return 0


def _demo(args: argparse.Namespace) -> int:
    import os

    from . import _demo
    from .telemetry import configure

    # The demo's own name only when nothing names the service: OTEL_SERVICE_NAME, DD_SERVICE, service.name in
    # OTEL_RESOURCE_ATTRIBUTES or the file.
    service = args.service_name or (None if _service_named(os.environ) else "tradetel-demo")
    telemetry = configure(
        service_name=service,
        exporters=args.exporters,
        prometheus_host=args.host,
        prometheus_port=args.port,
    )
    with telemetry:
        if telemetry.prometheus_url:
            print(f"tradetel demo: serving Prometheus metrics at {telemetry.prometheus_url}", flush=True)
        print(
            f"tradetel demo: exporters {', '.join(telemetry.settings.exporters) or 'none'}; Ctrl-C to stop", flush=True
        )
        try:
            _demo.run(telemetry, args.duration, sys.stdout, seed=args.seed, quiet=args.quiet)
        except KeyboardInterrupt:
            print("tradetel demo: stopped", flush=True)
    return 0


def _service_named(env: Mapping[str, str]) -> bool:
    from .config import SETTINGS, read_config_file

    (setting,) = (s for s in SETTINGS if s.path == "service_name")
    if any(env.get(name, "").strip() for name in setting.env):
        return True
    (attributes,) = (s for s in SETTINGS if s.path == "resource_attributes")
    try:
        if attributes.parse(env.get("OTEL_RESOURCE_ATTRIBUTES") or ",").get("service.name"):
            return True
    except ValueError:
        pass  # configure() reports the malformed variable
    file = env.get("TRADETEL_CONFIG_FILE")
    return file is not None and file.strip() != "" and "service_name" in read_config_file(file)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tradetel`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "catalog":
            return _catalog(args)
        if args.command == "ops":
            from .ops._cli import run as run_ops

            return run_ops(args)
        return _demo(args)
    except ConfigurationError as exc:
        print(f"tradetel: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
