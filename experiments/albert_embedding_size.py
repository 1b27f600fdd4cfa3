"""ALBERT Table 3: the factorized embedding size E, with and without cross-layer sharing.

  python -m bertlab.sweep experiments/albert_embedding_size.py --workdir=/tmp/sweeps/albert_e

The paper (ALBERT-base, H=768): not-shared improves with E up to E=H; all-shared is best
near E=128, with a fraction of the parameters. tiny keeps the ratios at H=128 (E = H/8 ... H),
with AdamW 1e-3 for 400 steps; cpu: ALBERT cpu on Wikipedia, 1,200 steps a point, then
fine-tuned on 2,000 SST-2 sentences; paper is ALBERT-base with E in
{64, 128, 256, 768}.
"""

from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides

SHARING = {"not-shared": "none", "all-shared": "all"}


def get_sweep(scale):
  if scale == "tiny":
    config, sizes = "configs/albert.py:tiny", (16, 32, 64, 128)
    overrides = {"train.optimizer": "adamw", "train.learning_rate": 1e-3, "train.steps": 400,
                 "train.checkpoint_every": 200, "train.eval_batches": 1000}
  elif scale == "cpu":
    config, sizes = "configs/albert.py:cpu", (16, 32, 64, 128)
    overrides = cpu_overrides(1200)
  else:
    config, sizes, overrides = "configs/albert.py:base", (64, 128, 256, 768), {}
  points = tuple(
      Point({"sharing": name, "E": e},
            {"model.sharing": sharing, "model.embedding_size": e})
      for name, sharing in SHARING.items() for e in sizes)
  return Sweep(
      name="albert_embedding_size",
      title="ALBERT Table 3: embedding size E, not-shared vs all-shared",
      config=config, overrides=overrides, points=points,
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("Parameters", "total_params"), ("MLM", "eval/mlm_accuracy"),
               ("MLM loss", "eval/mlm_loss"), ("SOP", "eval/sop_accuracy")),
      plot=Plot(x="E", series="sharing"))
