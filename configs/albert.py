"""ALBERT (Lan et al., 2020): factorized embedding (E=128), all layers shared, MLM + SOP.

  python -m bertlab.main --config=configs/albert.py:base --workdir=/tmp/albert --mode=summary

Sizes of Table 1 (base, large, xlarge, xxlarge) and `tiny` for tests. The ablations of
Tables 3 and 4 are overrides: --config.model.embedding_size=768, --config.model.sharing=ffn,
--config.model.num_hidden_groups=2.
"""

from bertlab.configs import add_pretraining_sections, base_config, parse_arg

SIZES = {
    "tiny": dict(hidden_size=128, num_layers=4, num_heads=2, intermediate_size=512,
                 embedding_size=32),
    # The CPU scale (bertlab/configs.py): four all-shared layers, E < H.
    "cpu": dict(hidden_size=128, num_layers=4, num_heads=2, intermediate_size=512,
                embedding_size=64),
    "base": dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096),
    "xlarge": dict(hidden_size=2048, num_layers=24, num_heads=16, intermediate_size=8192),
    "xxlarge": dict(hidden_size=4096, num_layers=12, num_heads=64, intermediate_size=16384),
}


def get_config(arg=None):
  name, size = parse_arg(arg, SIZES, default="base")
  model = dict(
      family="albert", vocab_size=30000, embedding_size=128, num_hidden_groups=1,
      sharing="all",
      # google-research/albert's gelu is the tanh approximation (HF: gelu_new).
      hidden_act="gelu_tanh",
      # ALBERT v2 drops dropout (Section 4.8).
      dropout_rate=0.0, attention_dropout_rate=0.0, heads=("mlm", "sentence"))
  model.update(size)
  # SentencePiece, segment pairs with SOP, n-gram masking (n <= 3, Section 4.1).
  # LAMB at batch 4096, learning rate 0.00176, 125k steps (Section 4.1).
  train = dict(optimizer="lamb", batch_size=4096, learning_rate=0.00176, steps=125_000,
               warmup_steps=3_125)
  config = add_pretraining_sections(base_config(model), name, train, tokenizer="sentencepiece",
                                    input_format="segment_pair", sentence_objective="sop",
                                    masking="ngram", dynamic_masking=False, dupe_factor=10)
  if name == "tiny":
    # Four shared layers leave the unigram plateau later than BERT's two: SOP needs ~600 steps
    # on the embedded corpus to end clearly above chance (64% at 600, 50% at 300).
    config.train.update(steps=600, checkpoint_every=200)
  if name == "cpu":
    # LAMB is for batches in the thousands; at 64 AdamW (BERT's optimizer) is the safer one.
    # Four shared layers cost 1.5 times BERT cpu's two per step (1.28 against 1.92 steps/s).
    config.train.update(optimizer="adamw", learning_rate=2e-3)
  return config
