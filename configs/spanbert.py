"""SpanBERT (Joshi et al., 2020): BERT's encoder on single segments, span masking, MLM + SBO.

  python -m bertlab.main --config=configs/spanbert.py:base --workdir=/tmp/spanbert --mode=summary

BERT's sizes with its cased vocabulary (28,996 word pieces), and `tiny` for tests.
"""

from bertlab.configs import BERT_SIZES, add_pretraining_sections, base_config, parse_arg


def get_config(arg=None):
  name, size = parse_arg(arg, BERT_SIZES, default="base")
  # No sentence objective, so no pooler is trained.
  config = base_config(dict(family="spanbert", vocab_size=28996, heads=("mlm", "sbo"),
                            use_pooler=False, max_span_length=10, **size))
  # Single segments, geometric spans of whole words (p=0.2, at most 10), dynamic (Section 3).
  # BERT's optimizer for 2.4M steps of batch 256 (Section 4.1).
  return add_pretraining_sections(config, name, dict(steps=2_400_000), input_format="single",
                                  sentence_objective="none", masking="span", span_p=0.2,
                                  max_span_words=10, dynamic_masking=True,
                                  # room for the last span, taken whole (bertlab/data/masking.py)
                                  max_predictions=32)
