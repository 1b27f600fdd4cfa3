"""BERT (Devlin et al., 2019): post-LN encoder, MLM + next-sentence prediction.

  python -m bertlab.main --config=configs/bert.py:base --workdir=/tmp/bert --mode=summary

Sizes: base and large (Table 1 of the paper), the compact mini/small/medium of Turc et al.
(2019), and `tiny` for tests. Every key of `model` is a field of bertlab's ModelConfig.
"""

from bertlab.configs import BERT_SIZES, add_pretraining_sections, base_config, parse_arg

SIZES = {
    **BERT_SIZES,
    "mini": dict(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024),
    "small": dict(hidden_size=512, num_layers=4, num_heads=8, intermediate_size=2048),
    "medium": dict(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=2048),
}


def get_config(arg=None):
  name, size = parse_arg(arg, SIZES, default="base")
  config = base_config(dict(family="bert", vocab_size=30522, heads=("mlm", "sentence"), **size))
  # Segment pairs with NSP, token masking precomputed 10 times (static, Appendix A.2).
  return add_pretraining_sections(config, name, input_format="segment_pair",
                                  sentence_objective="nsp", masking="token",
                                  dynamic_masking=False, dupe_factor=10)
