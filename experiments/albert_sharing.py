"""ALBERT Table 4 and Section 4.5: which sub-layers are shared across layers, and how many
groups of shared layers.

  python -m bertlab.sweep experiments/albert_sharing.py --workdir=/tmp/sweeps/albert_sharing

Sharing all / shared-attention / shared-FFN / not-shared at two embedding sizes (the paper:
E=768 and E=128; sharing the FFN costs most of the accuracy, sharing attention little), then
all-shared within `num_hidden_groups` groups (the paper's 1..12 groups at E=128). tiny: the
4-layer ALBERT tiny at E=32 and E=128 (= H), groups 1, 2, 4, AdamW 1e-3 for 400 steps.
cpu: ALBERT cpu (the same 4 layers on Wikipedia), 1,200 steps a point, then each point
fine-tuned on 2,000 SST-2 sentences (the paper's Table 4 reports SQuAD,
MNLI, SST-2 and RACE after fine-tuning).
"""

from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides

SHARING = {"all-shared": "all", "shared-attention": "attention", "shared-FFN": "ffn",
           "not-shared": "none"}


def get_sweep(scale):
  if scale == "tiny":
    config, sizes, groups = "configs/albert.py:tiny", (128, 32), (1, 2, 4)
    overrides = {"train.optimizer": "adamw", "train.learning_rate": 1e-3, "train.steps": 400,
                 "train.checkpoint_every": 200, "train.eval_batches": 1000}
  elif scale == "cpu":
    config, sizes, groups = "configs/albert.py:cpu", (128, 32), (1, 2, 4)
    overrides = cpu_overrides(1200)
  else:
    config, sizes, groups, overrides = "configs/albert.py:base", (768, 128), (1, 2, 3, 6, 12), {}
  points = tuple(
      Point({"E": e, "sharing": name, "groups": 1},
            {"model.embedding_size": e, "model.sharing": sharing, "model.num_hidden_groups": 1})
      for e in sizes for name, sharing in SHARING.items())
  points += tuple(
      Point({"E": sizes[-1], "sharing": f"{g} groups", "groups": g},
            {"model.embedding_size": sizes[-1], "model.sharing": "all",
             "model.num_hidden_groups": g})
      for g in groups if g > 1)
  return Sweep(
      name="albert_sharing",
      title="ALBERT Table 4: cross-layer sharing and groups",
      config=config, overrides=overrides, points=points,
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("Parameters", "total_params"), ("MLM", "eval/mlm_accuracy"),
               ("MLM loss", "eval/mlm_loss"), ("SOP", "eval/sop_accuracy")),
      plot=Plot(x="sharing", series="E"))
