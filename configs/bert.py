"""BERT (Devlin et al., 2019): post-LN encoder, MLM + next-sentence prediction.

  python -m bertlab.main --config=configs/bert.py:base --workdir=/tmp/bert --mode=summary

Sizes: base and large (Table 1 of the paper), the compact tiny/mini/small/medium of
Turc et al. (2019), and `tiny` for tests.
"""

from bertlab.configs import base_config, parse_arg

SIZES = {
    "tiny": dict(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512),
    "mini": dict(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024),
    "small": dict(hidden_size=512, num_layers=4, num_heads=8, intermediate_size=2048),
    "medium": dict(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=2048),
    "base": dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096),
}


def get_config(arg=None):
  _, size = parse_arg(arg, SIZES, default="base")
  return base_config(dict(
      family="bert", vocab_size=30522, max_position_embeddings=512, type_vocab_size=2,
      hidden_act="gelu", layer_norm_eps=1e-12, dropout_rate=0.1, attention_dropout_rate=0.1,
      heads=("mlm", "sentence"), use_pooler=True, sharing="all", dtype="float32",
      param_dtype="float32", scan_layers=True, **size))
