"""ModernBERT (Warner et al., 2024) as switches on bertlab's encoder: rotary positions (160k
global, 10k local base), pre-norm LayerNorms without bias and a final norm, no dense biases,
GeGLU feed-forward, sliding-window attention (128 tokens) with a global layer every third,
no token types and no pooler; MLM only at a 30% masking rate.

  python -m bertlab.main --config=configs/modernbert.py:base --workdir=/tmp/mb --mode=summary

base and large are the published shapes (transformers' ModernBertModel: 149,014,272 and
394,781,696 parameters; load_pretrained / save_pretrained read and write model_type
modernbert). tiny and cpu keep BERT tiny's width with three layers, so layer 0 is global and
layers 1 and 2 local, and a 32-token window (a quarter of the 128-token sequences, where
ModernBERT's 128 of its 1,024 pretraining tokens is an eighth).

Recipe: no NSP, full-sentence packing, dynamic token masking at 30% (Section 2.2.1); AdamW
with ModernBERT's peak rates (base 8e-4, large 5e-4), b2 0.98, weight decay 1e-5. The paper's
StableAdamW, warmup-stable-decay schedule and unpadding are not reproduced here: optax's AdamW,
BERT's linear decay, and bertlab's packed rows (data.pack_sequences) stand in for them.
"""

from bertlab.configs import add_pretraining_sections, base_config, parse_arg

SIZES = {
    "tiny": dict(hidden_size=128, num_layers=3, num_heads=2, intermediate_size=256,
                 local_attention_window=32),
    "cpu": dict(hidden_size=128, num_layers=3, num_heads=2, intermediate_size=256,
                local_attention_window=32),
    "base": dict(hidden_size=768, num_layers=22, num_heads=12, intermediate_size=1152,
                 local_attention_window=128),
    "large": dict(hidden_size=1024, num_layers=28, num_heads=16, intermediate_size=2624,
                  local_attention_window=128),
}
LEARNING_RATES = {"base": 8e-4, "large": 5e-4}


def get_config(arg=None):
  name, size = parse_arg(arg, SIZES, default="base")
  config = base_config(dict(
      family="modernbert", vocab_size=50368, max_position_embeddings=8192, type_vocab_size=0,
      position_embedding="rotary", rope_theta=160_000.0, local_rope_theta=10_000.0,
      global_attention_every=3, norm_position="pre", norm_bias=False, dense_bias=False,
      first_attention_norm=False, feed_forward="glu", hidden_act="gelu", layer_norm_eps=1e-5,
      dropout_rate=0.0, attention_dropout_rate=0.0, use_pooler=False, heads=("mlm",),
      pad_token_id=50283, **size))
  train = dict(learning_rate=LEARNING_RATES.get(name, 8e-4), b2=0.98, weight_decay=1e-5)
  config = add_pretraining_sections(config, name, train, tokenizer="bpe",
                                    input_format="full_sentences", sentence_objective="none",
                                    masking="token", mask_rate=0.3, dynamic_masking=True)
  # 30% of 128 tokens: room for every masked token.
  config.data.max_predictions = 40
  return config
