"""RoBERTa (Liu et al., 2019): BERT's encoder, MLM only, byte-level BPE, positions after pad.

  python -m bertlab.main --config=configs/roberta.py:base --workdir=/tmp/roberta --mode=summary
"""

from bertlab.configs import BERT_SIZES, add_pretraining_sections, base_config, parse_arg


def get_config(arg=None):
  name, size = parse_arg(arg, BERT_SIZES, default="base")
  config = base_config(dict(
      family="roberta", vocab_size=50265,
      # 512 positions after the padding index 1, as fairseq numbers them.
      max_position_embeddings=514, positions_from_padding=True, pad_token_id=1,
      type_vocab_size=1, layer_norm_eps=1e-5, heads=("mlm",),
      # No NSP, so nothing trains a pooler (RobertaForMaskedLM has none).
      use_pooler=False, **size))
  # Byte-level BPE, FULL-SENTENCES without NSP, dynamic masking (Sections 4.1, 4.2, 4.4).
  # Batch 8k, peak learning rate 6e-4 (base), beta2 0.98, 500k steps (Table 9).
  train = dict(batch_size=8192, learning_rate=6e-4, b2=0.98, steps=500_000, warmup_steps=24_000)
  return add_pretraining_sections(config, name, train, tokenizer="bpe",
                                  input_format="full_sentences",
                                  sentence_objective="none", masking="token",
                                  dynamic_masking=True)
