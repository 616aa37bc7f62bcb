"""``tradetel ops``: generate the operator artefacts, or try them on a local stack."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    ops = commands.add_parser("ops", help="dashboards, alert rules, SLOs and runbooks generated from the catalog")
    actions = ops.add_subparsers(dest="ops_command", required=True)
    generate = actions.add_parser(
        "generate",
        help="write Grafana dashboards, Prometheus rules and their tests, and the runbook page",
        description="Generate the operator artefacts for your catalog and namespace. Objectives come from the "
        "config file's [ops] table (TRADETEL_CONFIG_FILE or --config-file), then --set.",
    )
    generate.add_argument("--out", default="ops", help="output folder (default: ops)")
    generate.add_argument("--namespace", help="metric namespace (default: the configured one, else trading)")
    generate.add_argument(
        "--catalog", metavar="MODULE:NAME", help="your Catalog, or list of extra InstrumentSpecs, to import"
    )
    generate.add_argument("--config-file", help="TOML or YAML file with an [ops] table of objectives")
    generate.add_argument("--runbooks", help="where to write the runbook page (default: OUT/runbooks.md)")
    generate.add_argument(
        "--runbook-url", help="where the runbook page is published, for the alerts' runbook_url (default: its path)"
    )
    generate.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="an objective, e.g. fill_ratio=0.9"
    )
    up = actions.add_parser(
        "up",
        help="run the demo bot and a local Prometheus with the generated rules, until Ctrl-C",
        description="Start the demo bot and, when `prometheus` is on PATH, a local Prometheus scraping it with "
        "the generated rules. Prints the URLs and the PromQL of the first panels.",
    )
    up.add_argument("--port", type=int, default=9464, help="the demo's metrics port (default 9464; 0: any free port)")
    up.add_argument("--prometheus-port", type=int, default=9090, help="Prometheus port (default 9090)")
    up.add_argument("--duration", type=float, default=None, help="stop after SECONDS (default: until Ctrl-C)")
    up.add_argument(
        "--speed", type=float, default=1.0, help="run the rules N times faster (60: an hour of rules in a minute)"
    )


def run(args: argparse.Namespace) -> int:
    if args.ops_command == "up":
        from ._stack import run_stack

        return run_stack(port=args.port, prometheus_port=args.prometheus_port, duration=args.duration, speed=args.speed)
    return _generate(args)


def _generate(args: argparse.Namespace) -> int:
    import os

    from ..catalog import DEFAULT_CATALOG
    from ..errors import ConfigurationError
    from . import RUNBOOKS, generate
    from ._model import load_objectives

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigurationError("--set", item, "KEY=VALUE, e.g. fill_ratio=0.9")
        overrides[key.strip()] = value.strip()
    config_file = args.config_file or os.environ.get("TRADETEL_CONFIG_FILE")
    objectives = load_objectives(config_file, overrides)
    namespace = args.namespace or os.environ.get("TRADETEL_NAMESPACE") or DEFAULT_CATALOG.namespace
    catalog = _catalog(args.catalog).with_namespace(namespace)
    runbooks = args.runbooks or os.path.join(args.out, RUNBOOKS)
    written = generate(
        args.out, catalog, objectives, runbooks=runbooks, runbook_url=args.runbook_url or runbooks.replace(os.sep, "/")
    )
    for path in written:
        print(path)
    return 0


def _catalog(reference: str | None) -> Any:
    """The catalog named ``module:attribute`` (a Catalog, or InstrumentSpecs extending the default one)."""
    import importlib

    from ..catalog import DEFAULT_CATALOG, Catalog
    from ..errors import ConfigurationError

    if not reference:
        return DEFAULT_CATALOG
    module, sep, attribute = reference.partition(":")
    try:
        found = getattr(importlib.import_module(module), attribute) if sep else None
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError("--catalog", reference, f"an importable MODULE:NAME ({exc})") from None
    if isinstance(found, Catalog):
        return found
    if isinstance(found, list | tuple):
        return DEFAULT_CATALOG.extend(found)
    raise ConfigurationError("--catalog", reference, "MODULE:NAME of a Catalog or a list of InstrumentSpec")
