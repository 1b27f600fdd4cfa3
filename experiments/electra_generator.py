"""ELECTRA Section 3.2 and Figure 3: generator size as a fraction of the discriminator's
width, and weight tying between the two (none, token+position embeddings, all; and
DeBERTa-v3's gradient-disentangled sharing, gdes, which the paper did not have).

  python -m bertlab.sweep experiments/electra_generator.py --workdir=/tmp/sweeps/electra

The paper finds generators 1/4-1/2 the discriminator's size best, and tying embeddings
better than none (tying all helps little more and forces equal sizes). The paper reports GLUE
(at cpu: SST-2 fine-tuned on 2,000 sentences, `cpu_downstream`); here also the discriminator's
held-out replaced-token detection against always-"original" (`rtd_original_share`) and the
generator's MLM accuracy. tiny: ELECTRA tiny, 300 steps;
paper: ELECTRA-base (the tying study uses equal sizes, as the paper's does).
"""

from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides

SIZES = (0.25, 1 / 3, 0.5, 0.75, 1.0)


def get_sweep(scale):
  config = (f"configs/electra.py:{scale}" if scale in ("tiny", "cpu")
            else "configs/electra.py:base")
  overrides = {"tiny": {"train.eval_batches": 1000}, "cpu": cpu_overrides(2500)}.get(scale, {})
  points = tuple(Point({"generator": f"{s:.2f}", "tie": "embeddings"},
                       {"electra.generator_hidden_size": s}) for s in SIZES)
  points += tuple(Point({"generator": "1.00", "tie": tie},
                        {"electra.generator_hidden_size": 1.0, "electra.tie_embeddings": tie})
                  for tie in ("none", "all", "gdes"))
  return Sweep(
      name="electra_generator",
      title="ELECTRA: generator size and weight tying",
      config=config, overrides=overrides, points=points,
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("Parameters", "total_params"), ("RTD accuracy", "eval/rtd_accuracy"),
               ("always original", "eval/rtd_original_share"), ("RTD loss", "eval/rtd_loss"),
               ("constant loss", "eval/rtd_constant_loss"), ("RTD AUC", "eval/rtd_auc"),
               ("RTD precision", "eval/rtd_precision"), ("RTD recall", "eval/rtd_recall"),
               ("generator MLM", "eval/mlm_accuracy")),
      plot=Plot(x="generator", series="tie"))
