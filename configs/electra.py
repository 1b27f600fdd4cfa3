"""ELECTRA (Clark et al., 2020): a small MLM generator and a replaced-token discriminator
sharing token and position embeddings.

  python -m bertlab.main --config=configs/electra.py:small --workdir=/tmp/electra --mode=summary

`model` is the discriminator; `electra.generator_hidden_size` sizes the generator (a
fraction of the discriminator's width when <= 1, else the width), as the released
generators (hidden 256 for small, base and large).
"""

import ml_collections

from bertlab.configs import add_pretraining_sections, base_config, parse_arg

SIZES = {
    "tiny": dict(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512,
                 embedding_size=128, generator_hidden_size=0.5),
    # The CPU scale (bertlab/configs.py): tiny's shape on real text.
    "cpu": dict(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512,
                embedding_size=128, generator_hidden_size=0.5),
    "small": dict(hidden_size=256, num_layers=12, num_heads=4, intermediate_size=1024,
                  embedding_size=128, generator_hidden_size=256),
    "base": dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072,
                 embedding_size=768, generator_hidden_size=256),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096,
                  embedding_size=1024, generator_hidden_size=256),
}


def get_config(arg=None):
  name, size = parse_arg(arg, SIZES, default="small")
  generator_hidden_size = size.pop("generator_hidden_size")
  config = base_config(dict(family="electra", vocab_size=30522, heads=("rtd",),
                            use_pooler=False, **size))
  config.electra = ml_collections.ConfigDict(dict(
      generator_hidden_size=float(generator_hidden_size),
      # Weight of the discriminator's loss against the generator's MLM loss (Section 3.2).
      disc_weight=50.0,
      # > 0: the discriminator is MLM + RTD in one model, its own MLM head (model.heads
      # ("rtd", "mlm")) predicting the originals at the masked positions of its corrupted input.
      disc_mlm_weight=0.0,
      # Weight sharing (Section 3.2): none, embeddings (token and position, the paper's
      # choice), gdes (DeBERTa-v3: the generator's tables behind a stop-gradient plus the
      # discriminator's own residual) or all (the whole encoder; generator_hidden_size=1.0).
      tie_embeddings="embeddings",
      # Replacements sampled from the generator's softmax; False takes its argmax (comparison).
      sample=True))
  # BERT's WordPiece data without NSP, masked on the fly as the released code does (which
  # makes 85% of the selected tokens [MASK] and keeps the rest: --config.data.mask_token_share
  # =0.85 --config.data.random_token_share=0; the default is BERT's 80/10/10).
  # ELECTRA-Small: batch 128, learning rate 5e-4, 1M steps (Table 6).
  train = dict(batch_size=128, learning_rate=5e-4, steps=1_000_000, warmup_steps=10_000)
  return add_pretraining_sections(config, name, train, input_format="segment_pair",
                                  sentence_objective="none", masking="token",
                                  dynamic_masking=True)
