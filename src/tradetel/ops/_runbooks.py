"""The runbook page: one section per alert and per SLO, generated from the same data as the rules."""

from __future__ import annotations

from ._model import Names, Objectives, duration
from ._rules import Runbook, alerts, anchor, slos

__all__ = ["runbooks_markdown"]


def _section(title: str, anchor_text: str, lines: list[str], runbook: Runbook, names: Names) -> list[str]:
    out = [
        f'<a id="{anchor(anchor_text)}"></a>',
        "",
        f"## {title}",
        "",
        *lines,
        "",
        f"**What it means.** {runbook.meaning}",
    ]
    out += ["", "**First queries.**", ""]
    out += [f"{index}. `{names.resolve(query)}`" for index, query in enumerate(runbook.queries, 1)]
    out += ["", "**What to do.**", ""]
    out += [f"- {action}" for action in runbook.actions]
    return [*out, ""]


def runbooks_markdown(objectives: Objectives, names: Names) -> str:
    """The Markdown of the runbook page for these objectives and this catalog."""
    out = [
        "# Runbooks",
        "",
        "One section per alert of `ops/prometheus/tradetel.rules.yml`, generated with it by `tradetel ops generate`",
        "(do not edit by hand). Each alert's `runbook_url` annotation points at its section. The queries are",
        f"written for the `{names.catalog.namespace}` namespace.",
        "",
    ]
    for alert in alerts(objectives, names):
        after = duration(alert.for_seconds) if alert.for_seconds else "one evaluation"
        lines = [
            f"Severity `{alert.severity}`, after {after};"
            f" reads {', '.join(f'`{name}`' for name in names.instruments(alert.expr))}.",
            "",
            f"```promql\n{names.resolve(alert.expr)}\n```",
        ]
        out += _section(alert.name, alert.name, lines, alert.runbook, names)
    for slo in slos(objectives, names):
        pairs = ", ".join(
            f"{pair.factor:g}x over {duration(pair.long)} and {duration(pair.short)} ({pair.severity})"
            for pair in slo.windows()
        )
        lines = [
            f'Alert `SLOErrorBudgetBurn{{slo="{slo.name}"}}`. Objective: {slo.description} '
            f"Error budget {slo.budget:.4g} over 30 days; burn-rate pairs: {pairs}.",
            "",
            f"```promql\n{names.resolve(slo.errors.replace('$window', '1h'))}\n```",
        ]
        out += _section(f"SLO {slo.title}", "slo-" + slo.name, lines, slo.runbook, names)
    return "\n".join(out).rstrip() + "\n"
