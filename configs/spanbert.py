"""SpanBERT (Joshi et al., 2020): BERT's encoder on single segments, span masking, MLM + SBO.

  python -m bertlab.main --config=configs/spanbert.py:base --workdir=/tmp/spanbert --mode=summary

Sizes of BERT (cased vocabulary, 28,996 word pieces) and `tiny` for tests.
"""

from bertlab.configs import base_config, parse_arg

SIZES = {
    "tiny": dict(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512),
    "base": dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096),
}


def get_config(arg=None):
  _, size = parse_arg(arg, SIZES, default="base")
  return base_config(dict(
      family="spanbert", vocab_size=28996, max_position_embeddings=512, type_vocab_size=2,
      hidden_act="gelu", layer_norm_eps=1e-12, dropout_rate=0.1, attention_dropout_rate=0.1,
      # No sentence objective, so no pooler is trained.
      heads=("mlm", "sbo"), use_pooler=False, max_span_length=10, sharing="all",
      dtype="float32", param_dtype="float32", scan_layers=True, **size))
