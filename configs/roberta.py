"""RoBERTa (Liu et al., 2019): BERT's encoder, MLM only, byte-level BPE, positions after pad.

  python -m bertlab.main --config=configs/roberta.py:base --workdir=/tmp/roberta --mode=summary
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
      family="roberta", vocab_size=50265,
      # 512 positions after the padding index 1, as fairseq numbers them.
      max_position_embeddings=514, positions_from_padding=True, pad_token_id=1,
      type_vocab_size=1, hidden_act="gelu", layer_norm_eps=1e-5, dropout_rate=0.1,
      attention_dropout_rate=0.1, heads=("mlm",), use_pooler=True, sharing="all",
      dtype="float32", param_dtype="float32", scan_layers=True, **size))
