"""An example Alertmanager configuration that routes tradetel's alerts by severity."""

from __future__ import annotations

from typing import Any

__all__ = ["RECEIVERS", "alertmanager_config"]

# severity -> receiver. critical pages someone, warning goes to the team's chat, info becomes a ticket.
RECEIVERS = {"critical": "pager", "warning": "chat", "info": "ticket"}


def alertmanager_config() -> dict[str, Any]:
    """The configuration, as a mapping ready for YAML. Replace the webhook URLs with your own receivers."""
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "chat",
            "group_by": ["alertname", "job", "slo"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    "receiver": receiver,
                    "matchers": [f'severity="{severity}"'],
                    **({"repeat_interval": "1h", "group_wait": "10s"} if severity == "critical" else {}),
                    **({"repeat_interval": "24h"} if severity == "info" else {}),
                }
                for severity, receiver in RECEIVERS.items()
            ],
        },
        "inhibit_rules": [
            {
                # While a breaker is open, the error burst that opened it is known: do not page twice.
                "source_matchers": ['alertname="CircuitBreakerTripped"'],
                "target_matchers": ['alertname="ExchangeAPIErrorBurst"'],
                "equal": ["job", "instance"],
            },
            {
                # A page for a burning budget makes the ticket for the same SLO redundant.
                "source_matchers": ['alertname="SLOErrorBudgetBurn"', 'severity="critical"'],
                "target_matchers": ['alertname="SLOErrorBudgetBurn"', 'severity="warning"'],
                "equal": ["job", "slo"],
            },
            {
                "source_matchers": ['alertname="HighExposure"'],
                "target_matchers": ['alertname="AtRiskExposureAboveTarget"'],
                "equal": ["job", "instance", "account"],
            },
        ],
        "receivers": [
            {
                "name": receiver,
                "webhook_configs": [{"url": f"http://127.0.0.1:9095/{receiver}", "send_resolved": True}],
            }
            for receiver in RECEIVERS.values()
        ],
    }
