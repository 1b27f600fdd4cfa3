"""Reference curves: each family's run at a scale, as CSV and PNG.

  python -m bertlab.sweeps.curves --workdir=/tmp/curves                 # tiny, embedded corpus
  python -m bertlab.sweeps.curves --size=cpu --workdir=/tmp/curves-cpu  # Wikipedia, ~1 h each

trains (or resumes) `configs/<family>.py:<size>` for each family in `<workdir>/<family>`, then
writes `<family>.csv` (the logged steps: loss, per-objective losses and accuracies, and the
held-out `eval_*` metrics where the config evaluates during training) and `<family>.png`, in
experiments/reference_curves/ (tiny) or experiments/reference_curves/<size>/.
`plot_run(workdir, family, size)` draws a run of yours over the reference, so a healthy run can
be told from a broken one at a glance.
"""

import argparse
import csv
import os

from bertlab import config_files, console
from bertlab.sweeps import report

FAMILIES = ("bert", "albert", "roberta", "electra", "spanbert")
REFERENCE_DIR = os.path.join(config_files.PROJECT_ROOT, "experiments", "reference_curves")
# Metrics read as rates in [0, 1], drawn in one panel beside the losses.
RATE_SUFFIXES = ("_accuracy", "_share", "_auc")


def curve_rows(workdir: str, with_eval: bool = False) -> list[dict]:
  """The training rows of a run: step, loss and every *_loss / *_accuracy / *_auc it logged;
  `with_eval` adds the held-out evaluations during training (`train.eval_every`) as `eval_*`
  columns of the row of their step."""
  from bertlab.train.metrics import read_metrics  # jax: experiment files stay light
  keep = lambda row: {k: v for k, v in row.items()
                      if k in ("step", "loss") or k.endswith(("_loss",) + RATE_SUFFIXES)}
  by_step = {}
  for row in read_metrics(workdir):
    if not row.get("eval"):
      by_step.setdefault(row["step"], {}).update(keep(row))
    elif with_eval and row.get("split") == "eval":
      by_step.setdefault(row["step"], {"step": row["step"]}).update(
          {f"eval_{k}": v for k, v in keep(row).items() if k != "step"})
  return [by_step[step] for step in sorted(by_step)]


def read_csv(path: str) -> list[dict]:
  with open(path) as f:
    return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def _panels(rows: list[dict]) -> list[list[str]]:
  """Losses in one panel, accuracies (and ranking AUCs) in another."""
  keys = list(dict.fromkeys(k for row in rows for k in row if k != "step"))
  return [[k for k in keys if k.endswith("loss")],
          [k for k in keys if k.endswith(RATE_SUFFIXES)]]


def plot_curves(rows: list[dict], title: str, path: str | None = None,
                reference: list[dict] | None = None):
  """Loss and accuracy panels of `rows` (solid), over `reference` (dashed) when given."""
  import matplotlib
  if path:
    matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for ax, keys, label in zip(axes, _panels(reference or rows), ("loss", "accuracy")):
    for index, key in enumerate(keys):
      color = f"C{index}"
      for data, style, suffix in ((reference, "--", " (reference)"), (rows, "-", "")):
        points = [(r["step"], r[key]) for r in data or [] if key in r]
        if points:
          ax.plot(*zip(*points), style, color=color, label=key + suffix)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  if path:
    fig.savefig(path, dpi=100)
    plt.close(fig)
  return fig


def reference_dir(size: str = "tiny") -> str:
  return REFERENCE_DIR if size == "tiny" else os.path.join(REFERENCE_DIR, size)


def plot_run(workdir: str, family: str, path: str | None = None, size: str = "tiny"):
  """A run of yours (a bertlab workdir) over the family's reference curve at `size`."""
  reference = os.path.join(reference_dir(size), f"{family}.csv")
  if not os.path.exists(reference):
    raise FileNotFoundError(f"No reference curve {reference}; families with one: "
                            f"{', '.join(FAMILIES)}.")
  return plot_curves(curve_rows(workdir, with_eval=True),
                     f"{family}: {workdir} (solid) vs reference (dashed)",
                     path, read_csv(reference))


def make_reference(family: str, workdir: str, out: str, size: str = "tiny") -> list[dict]:
  """Trains `configs/<family>.py:<size>` in `workdir/<family>` and writes its CSV and PNG."""
  from bertlab.train import trainer  # TensorFlow: after the command's console.setup
  config = config_files.load(f"configs/{family}.py:{size}")
  run_dir = os.path.join(workdir, family)
  trainer.train_and_evaluate(config, run_dir)
  rows = curve_rows(run_dir, with_eval=True)
  os.makedirs(out, exist_ok=True)
  report.write_csv(rows, os.path.join(out, f"{family}.csv"))
  source = ("the embedded corpus" if config.data.source == "default"
            else os.path.basename(config.data.source))
  plot_curves(rows, f"{family} {size} on {source} ({config.train.steps} steps, batch "
              f"{config.train.batch_size})", os.path.join(out, f"{family}.png"))
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m bertlab.sweeps.curves", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--size", default="tiny", help="tiny or cpu")
  parser.add_argument("--out", default=None, help="default: experiments/reference_curves[/size]")
  parser.add_argument("--families", default=",".join(FAMILIES))
  console.add_verbosity_argument(parser)
  args = parser.parse_args(argv)
  console.setup(args.verbosity)
  # after console.setup: TensorFlow's start-up notices are filtered for later imports only
  from bertlab.train.trainer import Preempted
  for family in args.families.split(","):
    if family not in FAMILIES:
      raise SystemExit(f"Unknown family {family!r}; valid: {', '.join(FAMILIES)}.")
    try:
      rows = make_reference(family, args.workdir, args.out or reference_dir(args.size),
                            args.size)
    except Preempted as stop:  # saved, not finished: no curve is written; rerun to go on
      print(f"{stop} No curve written for {family}; rerun the command to go on.", flush=True)
      from bertlab.main import exit_now  # it defines main's absl flags: only on this way out
      exit_now(stop.exit_code)
    print(f"{family}: {len(rows)} rows, loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}")


if __name__ == "__main__":
  main()
