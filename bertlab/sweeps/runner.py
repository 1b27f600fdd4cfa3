"""Runs a sweep's points one after another in this process, each in `<workdir>/<point>`.

A point is finished when its `result.json` exists: the sweep skips it. It is written only
once the point's run has reached `train.steps`; SIGTERM saves the running point and stops the
sweep (`trainer.Preempted`). An unfinished point resumes from its checkpoints (the
pretraining loop's own resume), so an interrupted sweep loses at most the steps since a
point's last checkpoint. A finished point whose saved config
differs from the experiment's is an error, not a silent reuse of a stale result.

A sweep's downstream tasks fine-tune each point's checkpoint in `<point>/downstream/<task>-
seed<k>` after its held-out evaluations. A finished point made before a task was added gets
that task's columns on the next run while its checkpoint is there; without it (a result copied
from another machine) they stay empty, and the runner says so.
"""

import json
import os
from typing import Any

import numpy as np

from bertlab import config_files, files
from bertlab.sweeps.spec import Point, Sweep, downstream_dir

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


def _train_flops(config) -> dict[str, float]:
  """The run's training FLOPs (matmuls, bertlab.train.flops): what points of different
  objectives are compared at."""
  from bertlab.train.flops import step_flops  # jax, as _param_counts
  return {"train_flops": step_flops(config) * config.train.steps}


def _check_same_config(path: str, saved: dict, now: dict,
                       remedy: str = "delete that point's directory to rerun it") -> None:
  changes = config_files.differences(saved, now)
  if changes:
    shown = [f"{key}: {before!r} -> {after!r}" for key, (before, after) in changes.items()]
    raise ValueError(
        f"{path} was made with a different config than the experiment now gives this point "
        "(saved -> now):\n  " + "\n  ".join(shown) + f"\nUse a new --workdir, or {remedy}.")


# Where a saved downstream config starts from: the point's own directory, wherever it is now
# (finished points may be copied into another workdir).
POINT_CHECKPOINT = "<the point's checkpoint>"


def _downstream_configs(sweep: Sweep) -> dict[str, dict]:
  """Each downstream task's fine-tuning config (its first seed's), as saved in result.json."""
  return {name: json.loads(task.run_config(POINT_CHECKPOINT, task.seeds[0]).to_json())
          for name, task in sweep.downstream.items()}


def _downstream_metrics(name: str, task, point_dir: str) -> dict[str, float]:
  """`task` fine-tuned from the point's checkpoint once per seed: the best epochs' dev
  metrics, their mean over seeds and (several seeds) their standard deviation."""
  from bertlab.train import finetuner  # TensorFlow and jax: only when a point is fine-tuned
  runs = []
  for seed in task.seeds:
    best = finetuner.finetune(task.run_config(point_dir, seed),
                              downstream_dir(point_dir, name, seed))
    runs.append({k: v for k, v in best["metrics"].items() if isinstance(v, float)})
  row = {}
  for metric in runs[0]:
    values = np.array([run[metric] for run in runs])
    row[f"{name}/{metric}"] = float(values.mean())
    if len(values) > 1:
      row[f"{name}/{metric}_std"] = float(values.std(ddof=1))
  return row


def _add_downstream(sweep: Sweep, config, point_dir: str, result_path: str,
                    result: dict) -> dict:
  """A finished point's missing downstream columns, from its checkpoint while it is there."""
  from bertlab.train import trainer  # TensorFlow and jax, as in run_point
  saved = result.get("downstream", {})
  configs = _downstream_configs(sweep)
  for name in sorted(set(saved) & set(configs)):
    _check_same_config(f"{result_path} (downstream {name})", saved[name], configs[name],
                       f"delete {name!r} from its \"downstream\" and "
                       f"{downstream_dir(point_dir, name, '*')} to fine-tune again")
  missing = [name for name in sweep.downstream if name not in saved]
  if not missing:
    return result
  if trainer.latest_step(config, point_dir) != config.train.steps:
    print(f"{point_dir}: no final checkpoint to fine-tune for {', '.join(missing)}; those "
          "columns stay empty for this point.", flush=True)
    return result
  for name in missing:
    row = {k: v for k, v in result["row"].items() if not k.startswith(f"{name}/")}
    result["row"] = {**row, **_downstream_metrics(name, sweep.downstream[name], point_dir)}
    result.setdefault("downstream", {})[name] = configs[name]
    files.write_whole(result_path, json.dumps(result, indent=1))  # each finished task is kept
  return result


def run_point(sweep: Sweep, point: Point, workdir: str, extra: dict[str, Any] | None = None,
              on_step=None) -> dict[str, Any]:
  """Trains, evaluates and fine-tunes one point (or reads its finished result): its row of
  results.csv."""
  # The trainer (TensorFlow, jax) loads on the first point, after the command's console.setup;
  # experiment files import bertlab.sweeps and stay light.
  from bertlab.train import trainer
  config = sweep.point_config(point, extra)
  point_dir = os.path.join(workdir, point.name)
  result_path = os.path.join(point_dir, RESULT_FILE)
  if files.exists(result_path):
    with files.open_file(result_path) as f:
      result = json.load(f)
    _check_same_config(result_path, result["config"], json.loads(config.to_json()))
    row = _add_downstream(sweep, config, point_dir, result_path, result)["row"]
    return {**_train_flops(config), **row}  # results from before the column get it too
  trainer.train_and_evaluate(config, point_dir, on_step=on_step)  # raises Preempted
  reached = trainer.latest_step(config, point_dir)
  if reached != config.train.steps:
    raise RuntimeError(f"{point_dir} stopped at step {reached} of {config.train.steps}; it is "
                       "not recorded as finished. Rerun the sweep to resume it.")
  row = {**point.labels, **_param_counts(config), **_train_flops(config),
         **_train_metrics(point_dir)}
  for name in sweep.evals:
    metrics = trainer.evaluate(sweep.eval_config(config, name), point_dir)
    row.update({f"{name}/{k}": v for k, v in metrics.items() if k != "step"})
  result = {"row": row, "config": json.loads(config.to_json())}
  # the pretraining's result is kept before fine-tuning
  files.write_whole(result_path, json.dumps(result, indent=1))
  return _add_downstream(sweep, config, point_dir, result_path, result)["row"]


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
