"""What an experiment file declares: a base config, the points to sweep, how to report them.

An experiment file (experiments/<name>.py) defines `get_sweep(scale) -> Sweep`. Each point is
a set of config overrides and the labels it shows in the paper-style table; `scale` picks the
base config and the overrides that make the run fit a CPU in minutes on the embedded corpus
(`tiny`), learn language on real text in 15-20 minutes a point (`cpu`, see `cpu_overrides`),
or match the paper (`paper`).
"""

import dataclasses
import os
import re
from typing import Any

from bertlab import config_files

SCALES = ("tiny", "cpu", "paper")
# GLUE's files beside the checkout (../shared/data/glue), as the cpu scale's corpus.
SHARED_GLUE = os.path.normpath(os.path.join(config_files.PROJECT_ROOT, "..", "shared", "data",
                                            "glue"))


def cpu_overrides(steps: int) -> dict[str, Any]:
  """A point at the `cpu` scale: the family's cpu config (real text, a vocabulary of it) for
  `steps` steps, 15-20 minutes on 2 cores; warmup over the first tenth, held-out evaluation
  every 500 steps on 100 batches (6,400 sequences). With the cpu scale's rotary positions
  BERT cpu is past 25% held-out MLM accuracy by step 1,000 (learned positions were still on
  the unigram plateau at 8,000; experiments/RESULTS.md), so such points compare models that
  have begun to learn language."""
  return {"train.steps": steps, "train.warmup_steps": steps // 10,
          "train.checkpoint_every": 500, "train.eval_every": 500, "train.eval_batches": 100}


@dataclasses.dataclass(frozen=True)
class Downstream:
  """A downstream column, as the papers measure their ablations: every point's pretrained
  checkpoint fine-tuned on a task (`config`, a fine-tuning config such as
  `configs/finetune/glue.py:sst2`, with `overrides`) once per seed in `seeds`. The point's row
  gets the best epoch's dev metrics averaged over the seeds, `<name>/<metric>`, and their
  standard deviation over seeds, `<name>/<metric>_std`, when there are several."""
  config: str
  header: str  # the table's column, e.g. "SST-2"
  metric: str  # the dev metric it shows, e.g. "accuracy"
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  seeds: tuple[int, ...] = (0,)

  def run_overrides(self, pretrained: str, seed: int) -> dict[str, Any]:
    """One seed's overrides, starting from the pretraining workdir `pretrained`."""
    return {**self.overrides, "finetune.init_from": pretrained, "train.seed": seed}

  def run_config(self, pretrained: str, seed: int):
    """The fine-tuning config of one seed, starting from the pretraining workdir `pretrained`."""
    return config_files.apply_overrides(config_files.load(self.config),
                                        self.run_overrides(pretrained, seed))


def downstream_dir(point_dir: str, name: str, seed: int) -> str:
  """Where task `name` is fine-tuned from a point with `seed`."""
  return f"{point_dir}/downstream/{name}-seed{seed}"


def cpu_downstream() -> dict[str, Downstream]:
  """The cpu scale's downstream column: SST-2 accuracy (../shared/data/glue) fine-tuned on
  2,000 training sentences, 5 seeds of about half a minute each on 2 cores. Learning rate 1e-4
  (BERT's 2e-5 is for base sizes), batch 32, 3 epochs, warmup over 10%; packed rows and
  unrolled layers, the fastest way a CPU fine-tunes small models (the same numbers as one input
  per row).

  Why 2,000 (experiments/RESULTS.md, ALBERT Table 4 at cpu): an untrained ALBERT cpu stays at
  the majority class (50.9%) with 2,000 sentences where every pretrained one is above it; with
  20,000 the untrained model reaches 77.4% on its own, as much as any model pretrained for
  1,200 steps, so that column (3 seeds, 2.5 minutes each) ranked nothing and was dropped. STS-B
  was tried and left out too: dev Pearson 0.14 / 0.11 / 0.09 after 1,200 steps."""
  recipe = {"data.data_dir": SHARED_GLUE, "data.pack_sequences": True,
            "model.scan_layers": False, "train.learning_rate": 1e-4, "train.epochs": 3,
            "data.seq_len": 64}
  return {
      "sst2_2k": Downstream("configs/finetune/glue.py:sst2", "SST-2 (2k)", "accuracy",
                            {**recipe, "data.max_train_examples": 2_000}, (0, 1, 2, 3, 4)),
  }


@dataclasses.dataclass(frozen=True)
class Point:
  """One run: `labels` are its row in the table (e.g. {"E": 128, "sharing": "all-shared"}).
  `config`: a base config of its own instead of the sweep's, for a sweep across families
  (MLM against ELECTRA on one backbone); the sweep's overrides still apply to it."""
  labels: dict[str, Any]
  overrides: dict[str, Any]
  config: str | None = None

  @property
  def name(self) -> str:
    """A directory name from the labels: `E=128,sharing=all-shared`."""
    text = ",".join(f"{k}={v}" for k, v in self.labels.items())
    return re.sub(r"[^A-Za-z0-9=,._+-]", "_", text)


@dataclasses.dataclass(frozen=True)
class Plot:
  """One PNG per metric: `metric` against the label `x`, one line per value of `series`."""
  x: str
  series: str | None = None


@dataclasses.dataclass(frozen=True)
class Sweep:
  """An ablation at one scale.

  `config`: the base config spec (`configs/albert.py:tiny`); `overrides`: applied to every
  point before its own. `evals`: named held-out evaluations, each a set of extra overrides
  (ALBERT evaluates every model on MLM, NSP and SOP data: {"nsp": {"data.sentence_objective":
  "nsp"}, ...}); their metrics become columns `<eval>/<metric>`. `downstream`: named
  fine-tuning tasks run from every point's checkpoint (`Downstream`), columns
  `<task>/<metric>`. `columns`: the table's metric columns, (header, column) pairs, after the
  labels.
  """
  name: str
  title: str
  config: str
  points: tuple[Point, ...]
  columns: tuple[tuple[str, str], ...]
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  evals: dict[str, dict[str, Any]] = dataclasses.field(default_factory=lambda: {"eval": {}})
  downstream: dict[str, Downstream] = dataclasses.field(default_factory=dict)
  plot: Plot | None = None

  def __post_init__(self):
    names = [p.name for p in self.points]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
      raise ValueError(f"Sweep {self.name!r} has points with the same labels: {duplicated}; "
                       "give each point distinct labels.")

  @property
  def table_columns(self) -> tuple[tuple[str, str], ...]:
    """`columns`, then each downstream task's (header, `<task>/<metric>`)."""
    return self.columns + tuple((task.header, f"{name}/{task.metric}")
                                for name, task in self.downstream.items())

  def base_config(self, point: Point) -> str:
    """The config spec `point` starts from: its own, else the sweep's."""
    return point.config or self.config

  def point_overrides(self, point: Point, extra: dict[str, Any] | None = None) -> dict:
    """Sweep overrides, then the point's, then `extra` (the command line's --set)."""
    return {**self.overrides, **point.overrides, **(extra or {})}

  def point_config(self, point: Point, extra: dict[str, Any] | None = None):
    """The full config of `point`: the base config with `point_overrides`."""
    return config_files.apply_overrides(config_files.load(self.base_config(point)),
                                        self.point_overrides(point, extra))

  def eval_config(self, config, name: str):
    return config_files.apply_overrides(config, self.evals[name])


def load_sweep(path: str, scale: str) -> Sweep:
  """experiments/<name>.py at `scale`."""
  if scale not in SCALES:
    raise ValueError(f"Unknown scale {scale!r}; valid: {', '.join(SCALES)}.")
  module = config_files.load_module(path, "experiment")
  if not hasattr(module, "get_sweep"):
    raise AttributeError(f"{path} defines no get_sweep(scale); an experiment file returns a "
                         "bertlab.sweeps.Sweep from it.")
  return module.get_sweep(scale)
