"""SpanBERT (Joshi et al., 2020): BERT's encoder on single segments, span masking, MLM + SBO.

  python -m bertlab.main --config=configs/spanbert.py:base --workdir=/tmp/spanbert --mode=summary

BERT's sizes with its cased vocabulary (28,996 word pieces), and `tiny` for tests.
"""

from bertlab.configs import BERT_SIZES, base_config, parse_arg


def get_config(arg=None):
  _, size = parse_arg(arg, BERT_SIZES, default="base")
  # No sentence objective, so no pooler is trained.
  return base_config(dict(family="spanbert", vocab_size=28996, heads=("mlm", "sbo"),
                          use_pooler=False, max_span_length=10, **size))
