"""Runs a sweep's points one after another in this process, each in `<workdir>/<point>`.

A point is finished when its `result.json` exists: the sweep skips it. It is written only
once the point's run has reached `train.steps`; SIGTERM saves the running point and stops the
sweep (`trainer.Preempted`). An unfinished point resumes from its checkpoints (the
pretraining loop's own resume), so an interrupted sweep loses at most the steps since a
point's last checkpoint. A finished point whose saved config
differs from the experiment's is an error, not a silent reuse of a stale result.
"""

import json
import os
from typing import Any

from bertlab import config_files, files
from bertlab.sweeps.spec import Point, Sweep

RESULT_FILE = "result.json"


def _train_metrics(workdir: str) -> dict[str, float]:
  """The last point of the run's training curve: loss and the per-objective metrics."""
  from bertlab.sweeps.curves import curve_rows  # jax (via metrics): only when a point ends
  rows = curve_rows(workdir)
  return {f"train/{k}": v for k, v in rows[-1].items() if k != "step"} if rows else {}


def _param_counts(config) -> dict[str, int]:
  # The models (jax, flax) load on the first point: experiment files import bertlab.sweeps.
  from bertlab.jobs import build_model
  from bertlab.summary import count_params
  encoder, total = count_params(build_model(config))
  return dict(encoder_params=encoder, total_params=total)


def _check_same_config(path: str, saved: dict, config) -> None:
  changes = config_files.differences(saved, json.loads(config.to_json()))
  if changes:
    shown = [f"{key}: {before!r} -> {after!r}" for key, (before, after) in changes.items()]
    raise ValueError(
        f"{path} was made with a different config than the experiment now gives this point "
        "(saved -> now):\n  " + "\n  ".join(shown) + "\nUse a new --workdir, or delete that "
        "point's directory to rerun it.")


def run_point(sweep: Sweep, point: Point, workdir: str, extra: dict[str, Any] | None = None,
              on_step=None) -> dict[str, Any]:
  """Trains and evaluates one point (or reads its finished result): its row of results.csv."""
  # The trainer (TensorFlow, jax) loads on the first point, after the command's console.setup;
  # experiment files import bertlab.sweeps and stay light.
  from bertlab.train import trainer
  config = sweep.point_config(point, extra)
  point_dir = os.path.join(workdir, point.name)
  result_path = os.path.join(point_dir, RESULT_FILE)
  if files.exists(result_path):
    with files.open_file(result_path) as f:
      result = json.load(f)
    _check_same_config(result_path, result["config"], config)
    return result["row"]
  trainer.train_and_evaluate(config, point_dir, on_step=on_step)  # raises Preempted
  reached = trainer.latest_step(config, point_dir)
  if reached != config.train.steps:
    raise RuntimeError(f"{point_dir} stopped at step {reached} of {config.train.steps}; it is "
                       "not recorded as finished. Rerun the sweep to resume it.")
  row = {**point.labels, **_param_counts(config), **_train_metrics(point_dir)}
  for name in sweep.evals:
    metrics = trainer.evaluate(sweep.eval_config(config, name), point_dir)
    row.update({f"{name}/{k}": v for k, v in metrics.items() if k != "step"})
  with files.open_file(result_path + ".tmp", "w") as f:
    json.dump({"row": row, "config": json.loads(config.to_json())}, f, indent=1)
  files.replace(result_path + ".tmp", result_path)
  return row


def run_sweep(sweep: Sweep, workdir: str, extra: dict[str, Any] | None = None,
              progress: bool = True) -> list[dict[str, Any]]:
  """Every point in order, with a progress bar over points and one over each point's steps."""
  import tqdm
  rows = []
  points = tqdm.tqdm(sweep.points, desc=sweep.name, unit="point", disable=not progress,
                     position=0)
  for point in points:
    points.set_postfix_str(point.name)
    steps = sweep.point_config(point, extra).train.steps
    with tqdm.tqdm(total=steps, desc=point.name, unit="step", leave=False, position=1,
                   disable=not progress) as bar:

      def on_step(step, metrics, bar=bar):
        bar.update(step - bar.n)
        if metrics:
          bar.set_postfix(loss=f"{metrics['loss']:.3f}")

      rows.append(run_point(sweep, point, workdir, extra, on_step))
  return rows
