"""Masking: static (BERT: dupe_factor 10 masks per sequence, precomputed) vs dynamic
(RoBERTa Table 1: a new mask each time a sequence is read), and what is masked: tokens,
whole words, n-grams (ALBERT) or geometric spans (SpanBERT Table 6).

  python -m bertlab.sweep experiments/masking.py --workdir=/tmp/sweeps/masking

Every model is scored on the same held-out view (dynamic token masking), so the numbers
compare what each scheme taught, not how hard its own masks are. tiny: BERT tiny without
NSP, 300 steps; cpu: BERT cpu on Wikipedia, 2,500 steps, then fine-tuned on 2,000 SST-2
sentences (`cpu_downstream`); paper: BERT-base, 1M steps of 256.
"""

from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides

SCHEMES = (("token", False), ("token", True), ("whole_word", True), ("ngram", True),
           ("span", True))


def get_sweep(scale):
  config = f"configs/bert.py:{scale}" if scale in ("tiny", "cpu") else "configs/bert.py:base"
  overrides = {"data.sentence_objective": "none", "model.heads": ("mlm",),
               # room for a last span taken whole (bertlab/data/masking.py)
               "data.max_predictions": 32, "data.dupe_factor": 10}
  if scale == "tiny":
    overrides["train.eval_batches"] = 1000
  if scale == "cpu":
    overrides.update(cpu_overrides(2500))
  return Sweep(
      name="masking",
      title="Static vs dynamic masking; token, whole-word, n-gram and span masking",
      config=config, overrides=overrides,
      points=tuple(Point({"masking": m, "dynamic": d},
                         {"data.masking": m, "data.dynamic_masking": d}) for m, d in SCHEMES),
      evals={"eval": {"data.masking": "token", "data.dynamic_masking": True}},
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("MLM (token-masked)", "eval/mlm_accuracy"), ("MLM loss", "eval/mlm_loss"),
               ("MLM (own masks, train)", "train/mlm_accuracy")),
      plot=Plot(x="masking", series="dynamic"))
