"""The ``tradetel`` command: ``catalog``, ``config``, ``check``, ``demo``, ``ops``, ``--version``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from ._version import __version__
from .config import Settings
from .errors import ConfigurationError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradetel", description="OpenTelemetry metrics for trading bots.")
    parser.add_argument("--version", action="version", version=f"tradetel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    catalog = commands.add_parser("catalog", help="print the instrument catalog")
    catalog.add_argument(
        "--format",
        choices=("table", "markdown", "json", "pyi"),
        default="table",
        help="pyi: the typing stub of tel.<domain>.<instrument> (src/tradetel/_catalog_types.pyi)",
    )
    catalog.add_argument("--namespace", help="show names under this namespace instead of 'trading'")

    config = commands.add_parser(
        "config",
        help="print the effective settings and where each comes from",
        description="Print every setting as configure() would resolve it (argument, environment variable, config "
        "file, default) and where each value comes from. Secrets are shown as <redacted>.",
    )
    config.add_argument("--format", choices=("table", "json"), default="table")
    _settings_arguments(config)

    check = commands.add_parser(
        "check",
        help="validate the settings and reach each configured backend",
        description="Validate the settings and the catalog overrides, then check each enabled backend: the "
        "Prometheus port is free, the OTLP collector accepts an empty export, the DogStatsD socket or host is "
        "there. One line per check (ok, warn, FAIL); the exit status is 1 when a check fails.",
    )
    _settings_arguments(check)

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
    demo.add_argument(
        "--ticks", type=int, default=None, help="stop after N loop iterations (3 market-data updates each)"
    )
    demo.add_argument(
        "--counts",
        action="store_true",
        help="at exit, after the last export, print what the bot recorded as one JSON line",
    )

    from .ops._cli import add_parser as add_ops

    add_ops(commands)
    return parser


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", help="a TOML or YAML config file (default: TRADETEL_CONFIG_FILE)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="a setting given as an argument, as to configure(): e.g. --set prometheus.port=9100 (repeatable)",
    )


def _load(args: argparse.Namespace) -> Settings:
    from .config import load_settings

    arguments = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError("--set", item, "SETTING=VALUE, e.g. prometheus.port=9100")
        arguments[name.strip()] = value
    return load_settings(arguments, config_file=args.config_file)


def _config(args: argparse.Namespace) -> int:
    from ._inspect import settings_json, settings_table

    settings = _load(args)
    print(settings_json(settings) if args.format == "json" else settings_table(settings))
    return 0


def _check(args: argparse.Namespace) -> int:
    from ._inspect import FAIL, OK, WARN, Check, run_checks

    try:
        settings = _load(args)
    except ConfigurationError as exc:
        print(Check(FAIL, "settings", str(exc)).line(), flush=True)
        return 1
    given = sum(1 for origin in settings.origins if origin != "instruments")
    where = f"; config file {settings.config_file}" if settings.config_file else ""
    exporters = ", ".join(settings.exporters) or "none"
    print(Check(OK, "settings", f"valid ({given} set, the rest default{where}); exporters: {exporters}").line())
    checks = []
    for check in run_checks(settings):
        print(check.line(), flush=True)
        checks.append(check)
    failed = sum(check.status == FAIL for check in checks)
    warned = sum(check.status == WARN for check in checks)
    if failed or warned:
        print(f"tradetel check: {failed} failed, {warned} warning{'s' if warned != 1 else ''}")
    return 1 if failed else 0


def _catalog(args: argparse.Namespace) -> int:
    from ._docs import catalog_json, catalog_markdown, catalog_table
    from .catalog import DEFAULT_CATALOG

    catalog = DEFAULT_CATALOG.with_namespace(args.namespace) if args.namespace else DEFAULT_CATALOG
    from ._stubs import catalog_stub

    render = {"table": catalog_table, "markdown": catalog_markdown, "json": catalog_json, "pyi": catalog_stub}
    print(render[args.format](catalog), end="\n" if args.format != "pyi" else "")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import os

    if args.ticks is not None and args.ticks < 0:
        raise ConfigurationError("--ticks", args.ticks, "a whole number of loop iterations, 0 or more")

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
    bot = None
    with telemetry:
        if telemetry.prometheus_url:
            print(f"tradetel demo: serving Prometheus metrics at {telemetry.prometheus_url}", flush=True)
        print(
            f"tradetel demo: exporters {', '.join(telemetry.settings.exporters) or 'none'}; Ctrl-C to stop", flush=True
        )
        try:
            bot = _demo.run(telemetry, args.duration, sys.stdout, seed=args.seed, ticks=args.ticks, quiet=args.quiet)
        except KeyboardInterrupt:
            print("tradetel demo: stopped", flush=True)
    if args.counts and bot is not None:
        import json

        print(json.dumps(bot.counts(), sort_keys=True), flush=True)
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
        if args.command == "config":
            return _config(args)
        if args.command == "check":
            return _check(args)
        if args.command == "ops":
            from .ops._cli import run as run_ops

            return run_ops(args)
        return _demo(args)
    except ConfigurationError as exc:
        print(f"tradetel: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
