"""Do the old papers' conclusions hold on a modern backbone? The sentence objective (ALBERT
Table 5: none / NSP / SOP), the pretraining objective (ELECTRA: replaced-token detection
against MLM at equal compute; DeBERTa-v3's GDES tie; MLM + RTD in one discriminator) and the
masking (token / whole word / span, at 15% and 30%: BERT, SpanBERT, ModernBERT) on BERT's
encoder and on ModernBERT's, at the same width and depth.

  python -m bertlab.sweep experiments/modern_backbone.py --scale=cpu --workdir=/tmp/sweeps/modern

The modern backbone is BERT's config with ModernBERT's switches (`MODERN`): pre-norm without
biases, GeGLU, a global layer then local ones (a 32-token window at cpu), rotary bases of
160k / 10k; the inputs stay BERT's (segment pairs, token types and the pooler, which the
sentence heads read). Its GeGLU width of 256 per half gives 3 x 128 x 256 feed-forward weights
against BERT's 2 x 128 x 512: about three quarters. Every model is scored on the same held-out
views: MLM on token-masked contiguous pairs at 15%, NSP and SOP pairs; at cpu, fine-tuned on
2,000 SST-2 sentences as well (`cpu_downstream`).

The objective study's MLM point is the sentence study's `none` (MLM alone on the same
pairs). Its ELECTRA points are configs/electra.py at the same scale (the discriminator is the
MLM model's shape, the generator half its width, token embeddings tied) on the same data
(static masks, as the MLM point's), each trained for the steps that cost the MLM point's
training FLOPs (`bertlab.train.flops.step_flops`: the generator's forward and the second
encoder pass make an ELECTRA step dearer), the warmup scaled alike. Their MLM column is the
generator's (the discriminator's own for mlm+rtd is `disc. MLM`); the downstream column is
the paper's measure.

tiny: BERT tiny, 300 steps. cpu: BERT cpu (rotary in both), 1,200 steps a point. paper:
BERT-base at its recipe.
"""

from bertlab import config_files
from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides
from bertlab.train.flops import step_flops

MODERN = {
    "model.norm_position": "pre", "model.norm_bias": False, "model.dense_bias": False,
    "model.first_attention_norm": False, "model.feed_forward": "glu",
    "model.position_embedding": "rotary", "model.rope_theta": 160_000.0,
    "model.local_rope_theta": 10_000.0, "model.global_attention_every": 2,
    "model.layer_norm_eps": 1e-5,
}
WINDOW = {"tiny": 32, "cpu": 32, "paper": 128}
INTERMEDIATE = {"tiny": 256, "cpu": 256, "paper": 1536}
OBJECTIVES = ("none", "nsp", "sop")
# Replaced-token detection, on the MLM point's data (BERT's static masks).
RTD_OBJECTIVES = {
    "electra": {},
    "electra-gdes": {"electra.tie_embeddings": "gdes"},
    "mlm+rtd": {"model.heads": ("rtd", "mlm"), "electra.disc_mlm_weight": 1.0},
}
RTD_DATA = {"data.dynamic_masking": False}
MASKINGS = (("token", 0.15), ("whole_word", 0.15), ("span", 0.15), ("token", 0.3),
            ("span", 0.3))


def backbone(name: str, scale: str) -> dict:
  if name == "bert":
    return {}
  return {**MODERN, "model.local_attention_window": WINDOW[scale],
          "model.intermediate_size": INTERMEDIATE[scale]}


def at_equal_flops(reference, config) -> dict:
  """Overrides that give `config` the training FLOPs of `reference` (both full configs): its
  steps, and its warmup, scaled by their steps' cost."""
  ratio = step_flops(reference) / step_flops(config)
  return {"train.steps": round(reference.train.steps * ratio),
          "train.warmup_steps": round(reference.train.warmup_steps * ratio)}


def get_sweep(scale):
  size = scale if scale in ("tiny", "cpu") else "base"
  config, electra = f"configs/bert.py:{size}", f"configs/electra.py:{size}"
  # Room for 30% of 128 tokens, and for a last span taken whole.
  overrides = {"data.max_predictions": 48, "data.dupe_factor": 10}
  overrides.update({"tiny": {"train.eval_batches": 1000},
                    "cpu": cpu_overrides(1200)}.get(scale, {}))
  points = []
  for name in ("bert", "modern"):
    sentence = {objective: Point({"backbone": name, "study": "sentence", "objective": objective,
                                  "masking": "token", "rate": 0.15},
                                 {**backbone(name, scale), "data.sentence_objective": objective})
                for objective in OBJECTIVES}
    points += sentence.values()
    # The objective study's MLM point, as the runner will build it.
    mlm = config_files.apply_overrides(config_files.load(config),
                                       {**overrides, **sentence["none"].overrides})
    for objective, changes in RTD_OBJECTIVES.items():
      changes = {**backbone(name, scale), **RTD_DATA, **changes}
      rtd = config_files.apply_overrides(config_files.load(electra), {**overrides, **changes})
      points.append(Point({"backbone": name, "study": "objective", "objective": objective,
                           "masking": "token", "rate": 0.15},
                          {**changes, **at_equal_flops(mlm, rtd)}, config=electra))
    for masking, rate in MASKINGS[1:]:  # token at 15% is the NSP point above
      points.append(Point({"backbone": name, "study": "masking", "objective": "nsp",
                           "masking": masking, "rate": rate},
                          {**backbone(name, scale), "data.masking": masking,
                           "data.mask_rate": rate}))
  return Sweep(
      name="modern_backbone",
      title="The papers' ablations on BERT's and ModernBERT's backbones",
      config=config, overrides=overrides, points=tuple(points),
      evals={"mlm": {"data.sentence_objective": "none", "data.masking": "token",
                     "data.mask_rate": 0.15, "data.dynamic_masking": True},
             "nsp": {"data.sentence_objective": "nsp"},
             "sop": {"data.sentence_objective": "sop"}},
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("Parameters", "total_params"), ("Train FLOPs", "train_flops"),
               ("MLM", "mlm/mlm_accuracy"), ("MLM loss", "mlm/mlm_loss"),
               ("NSP", "nsp/nsp_accuracy"), ("SOP", "sop/sop_accuracy"),
               ("RTD AUC", "mlm/rtd_auc"), ("disc. MLM", "mlm/disc_mlm_accuracy")),
      plot=Plot(x="masking", series="backbone"))
