"""The benchmark's figures: statistics, targets, the JSON file and the table.

    python -m tests.bench.report bench-results.json [--markdown]

prints the table of a results file (scripts/bench does after every run).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path
import statistics
from typing import Any


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile (share in 0..1) of values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class Metric:
    """One row of the table: a distribution, or one figure, against a target."""

    name: str
    unit: str
    target: str
    """How the target reads, e.g. "p90 ≤ 60"."""
    met: bool | None
    """None when the run measured nothing."""
    median: float | None = None
    p90: float | None = None
    max: float | None = None
    n: int = 0
    value: float | None = None
    """The figure the target is judged on."""
    detail: dict[str, Any] = field(default_factory=dict)


def distribution(
    name: str, samples: list[float], *, limit: float, judged: str = "p90", unit: str = "ms"
) -> Metric:
    """Summarise samples; the target is `judged` (p90, p99 or median) ≤ limit."""
    if not samples:
        return Metric(name, unit, f"{judged} ≤ {limit:g}", None)
    shares = {"median": 0.5, "p90": 0.9, "p99": 0.99}
    value = percentile(samples, shares[judged])
    return Metric(
        name,
        unit,
        f"{judged} ≤ {limit:g}",
        value <= limit,
        median=statistics.median(samples),
        p90=percentile(samples, 0.9),
        max=max(samples),
        n=len(samples),
        value=value,
    )


def write(path: Path, metrics: list[Metric], info: dict[str, Any]) -> None:
    """Write the results as JSON."""
    data = {"info": info, "metrics": [asdict(metric) for metric in metrics]}
    path.write_text(json.dumps(data, indent=2) + "\n")


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table(data: dict[str, Any], *, markdown: bool = False) -> str:
    """Return the results as a table: metric, median, p90, max, target, met."""
    header = ["metric", "median", "p90", "max", "n", "target", "met"]
    rows = [header]
    for metric in data["metrics"]:
        met = {True: "yes", False: "NO", None: "?"}[metric["met"]]
        value = metric["value"]
        target = metric["target"]
        if metric["median"] is None and value is not None:
            cells = [_cell(value), "", ""]
        else:
            cells = [_cell(metric["median"]), _cell(metric["p90"]), _cell(metric["max"])]
        rows.append(
            [f"{metric['name']} ({metric['unit']})", *cells, str(metric["n"] or ""), target, met]
        )
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|" + "---|" * len(header))
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i in {0, 5} else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def details(data: dict[str, Any]) -> str:
    """Return the breakdowns and the machine, one `key: value` per line."""
    lines = [f"{key}: {value}" for key, value in data["info"].items()]
    lines.extend(
        f"{metric['name']}.{key}: {value}"
        for metric in data["metrics"]
        for key, value in metric["detail"].items()
    )
    return "\n".join(lines)


def main() -> None:
    """Print the table of a results file."""
    parser = argparse.ArgumentParser(description="Print the benchmark table")
    parser.add_argument("path", type=Path)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    data = json.loads(args.path.read_text())
    print(table(data, markdown=args.markdown))  # noqa: T201
    print()  # noqa: T201
    print(details(data))  # noqa: T201


if __name__ == "__main__":
    main()
