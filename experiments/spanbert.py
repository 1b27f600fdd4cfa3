"""SpanBERT Tables 6 and 7: span masking vs token masking, with and without the span boundary
objective (SBO).

  python -m bertlab.sweep experiments/spanbert.py --workdir=/tmp/sweeps/spanbert

Each model is scored on held-out data masked both ways: span-masked MLM is what SBO is meant
to help. cpu: SpanBERT cpu on Wikipedia, 1,500 steps a point, then
fine-tuned on 2,000 SST-2 sentences (`cpu_downstream`); tiny: SpanBERT tiny, 300 steps;
paper: SpanBERT-base (2.4M steps of 256).
"""

from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides

POINTS = (
    ({"masking": "span", "objective": "MLM+SBO"}, {}),
    ({"masking": "span", "objective": "MLM"}, {"model.heads": ("mlm",)}),
    ({"masking": "token", "objective": "MLM"}, {"model.heads": ("mlm",),
                                                "data.masking": "token"}),
)


def get_sweep(scale):
  config = (f"configs/spanbert.py:{scale}" if scale in ("tiny", "cpu")
            else "configs/spanbert.py:base")
  overrides = {"tiny": {"train.eval_batches": 1000}, "cpu": cpu_overrides(1500)}.get(scale, {})
  return Sweep(
      name="spanbert",
      title="SpanBERT: span masking and the span boundary objective",
      config=config, overrides=overrides,
      points=tuple(Point(labels, o) for labels, o in POINTS),
      evals={"span": {"data.masking": "span"}, "token": {"data.masking": "token"}},
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("MLM (span-masked)", "span/mlm_accuracy"),
               ("MLM (token-masked)", "token/mlm_accuracy"),
               ("SBO (span-masked)", "span/sbo_accuracy")),
      plot=Plot(x="objective", series="masking"))
