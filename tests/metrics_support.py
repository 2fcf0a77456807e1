"""Reading ``/metrics`` in tests: the samples of the Prometheus text format, by name and labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"

#: The series of a family of each type.
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


class Scrape:
    """One scrape, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self.names: set[str] = set()
        for family in text_string_to_metric_families(text):
            # A family with no child yet (nothing counted under any labels) has its series all the same.
            self.names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
                self.names.add(sample.name)

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a labelled child not there yet (nothing counted under it)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def dashboard_metrics() -> set[str]:
    """Every ``presenced_*`` series name the dashboard's queries use."""
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", ())]
    return {name for expr in expressions for name in re.findall(r"\bpresenced_[a-z_]+", expr)}
