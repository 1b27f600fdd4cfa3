"""RoBERTa Table 2: how the input is packed, with and without next-sentence prediction.

  python -m bertlab.sweep experiments/roberta_input_format.py --workdir=/tmp/sweeps/roberta

SEGMENT-PAIR+NSP (BERT), SENTENCE-PAIR+NSP (single sentences, shorter inputs),
FULL-SENTENCES (packed across documents, no NSP) and DOC-SENTENCES (never crossing a
document). The paper compares them downstream; here every model is scored on one held-out
view (FULL-SENTENCES, token masking) so the MLM numbers are comparable, and at cpu fine-tuned
on 2,000 SST-2 sentences (`cpu_downstream`). cpu: RoBERTa cpu on Wikipedia, 1,500 steps a
point (about 15 minutes on 2 cores); tiny: RoBERTa tiny, 300 steps; paper: RoBERTa-base at BERT's budget (1M steps of 256, Section 4.2).
"""

from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides

# NSP needs the sentence head and its pooler, which RoBERTa itself drops.
_NSP = {"data.sentence_objective": "nsp", "model.heads": ("mlm", "sentence"),
        "model.use_pooler": True}
FORMATS = {
    "segment_pair+NSP": {"data.input_format": "segment_pair", **_NSP},
    "sentence_pair+NSP": {"data.input_format": "sentence_pair", **_NSP},
    "full_sentences": {"data.input_format": "full_sentences"},
    "doc_sentences": {"data.input_format": "doc_sentences"},
}


def get_sweep(scale):
  if scale == "tiny":
    config, overrides = "configs/roberta.py:tiny", {"train.eval_batches": 1000}
  elif scale == "cpu":
    config, overrides = "configs/roberta.py:cpu", cpu_overrides(1500)
  else:
    config, overrides = "configs/roberta.py:base", {"train.batch_size": 256,
                                                    "train.steps": 1_000_000}
  # Two token types for the pair formats (RoBERTa itself has one).
  overrides["model.type_vocab_size"] = 2
  return Sweep(
      name="roberta_input_format",
      title="RoBERTa Table 2: input format and NSP",
      config=config, overrides=overrides,
      points=tuple(Point({"format": name}, o) for name, o in FORMATS.items()),
      evals={"eval": {"data.input_format": "full_sentences",
                      "data.sentence_objective": "none"}},
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("MLM", "eval/mlm_accuracy"), ("MLM loss", "eval/mlm_loss"),
               ("NSP (train)", "train/nsp_accuracy")),
      plot=Plot(x="format"))
