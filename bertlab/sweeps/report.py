"""A sweep's results as the papers show them: results.csv, a markdown table, a PNG per metric."""

import csv
import os
from typing import Any

from bertlab import files
from bertlab.sweeps.spec import Sweep

MISSING = "—"


def write_csv(rows: list[dict[str, Any]], path: str) -> None:
  """Every column any row has, in first-seen order (labels first)."""
  columns = list(dict.fromkeys(k for row in rows for k in row))
  with files.open_file(path, "w") as f:
    writer = csv.DictWriter(f, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)


def format_value(column: str, value: Any) -> str:
  """Accuracies in percent (as the papers print them), parameter counts in millions, FLOPs
  in scientific notation."""
  if value is None or value == "":
    return MISSING
  if not isinstance(value, (int, float)) or isinstance(value, bool):
    return str(value)
  if column.endswith("_params"):
    return f"{value / 1e6:.2f}M"
  if column.endswith("_flops"):
    return f"{value:.2e}"
  if isinstance(value, int):
    return str(value)  # a label such as E=128
  if "accuracy" in column or column.endswith(("_precision", "_recall", "_share")):
    return f"{100 * value:.1f}"
  return f"{value:.3f}"


def _cell(row: dict[str, Any], column: str) -> str:
  """The value, and ± its standard deviation over seeds where the row has one (downstream)."""
  cell = format_value(column, row.get(column))
  spread = row.get(f"{column}_std")
  if spread is not None and spread != "":
    cell += " ± " + format_value(column, spread)
  return cell


def markdown_table(sweep: Sweep, rows: list[dict[str, Any]]) -> str:
  """One row per point: its labels, then the sweep's columns."""
  labels = list(dict.fromkeys(k for point in sweep.points for k in point.labels))
  headers = labels + [header for header, _ in sweep.table_columns]
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  for row in rows:
    cells = [format_value(k, row.get(k)) for k in labels]
    cells += [_cell(row, column) for _, column in sweep.table_columns]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def write_plots(sweep: Sweep, rows: list[dict[str, Any]], directory: str) -> list[str]:
  """One PNG per column: the metric against `sweep.plot.x`, a line per `sweep.plot.series`."""
  if sweep.plot is None:
    return []
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  x_key, series_key = sweep.plot.x, sweep.plot.series
  xs = list(dict.fromkeys(row[x_key] for row in rows))
  groups = list(dict.fromkeys(row.get(series_key) for row in rows)) if series_key else [None]
  paths = []
  for header, column in sweep.table_columns:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for group in groups:
      points = [(xs.index(row[x_key]), row[column]) for row in rows
                if row.get(column) not in (None, "") and (series_key is None
                                                         or row.get(series_key) == group)]
      if points:
        ax.plot(*zip(*points), marker="o", label=None if group is None else f"{series_key}={group}")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_xlabel(x_key)
    ax.set_ylabel(header)
    ax.set_title(f"{sweep.title}\n{header}", fontsize=9)
    if series_key and ax.lines:  # a column no point has yet gets no legend
      ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(directory, f"{column.replace('/', '_')}.png")
    with files.open_file(path, "wb") as f:
      fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths


def write_report(sweep: Sweep, rows: list[dict[str, Any]], workdir: str,
                 command: str) -> dict[str, Any]:
  """results.csv, results.md (title, command, table) and the plots, in `workdir`."""
  files.makedirs(workdir)
  write_csv(rows, os.path.join(workdir, "results.csv"))
  table = markdown_table(sweep, rows)
  with files.open_file(os.path.join(workdir, "results.md"), "w") as f:
    f.write(f"## {sweep.title}\n\n```bash\n{command}\n```\n\n{table}\n")
  return dict(table=table, plots=write_plots(sweep, rows, workdir))
