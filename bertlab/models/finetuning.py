"""Fine-tuning models: the one encoder with a task head (GLUE, SQuAD, NER).

The encoder's parameters sit under `encoder`, as in the pretraining models, so a pretrained
encoder drops in whatever head it was trained with.
"""

import flax.linen as nn
import jax

from bertlab.models.config import ModelConfig
from bertlab.models.encoder import Encoder
from bertlab.models.heads import SequenceHead, SpanHead, TokenHead

HEAD_KINDS = ("classification", "regression", "span", "token")


class FinetuningModel(nn.Module):
  """`head`: classification / regression on the pooled first token, span (start and end
  logits), or token (a label per token). `freeze_encoder` is the feature-based mode: no
  gradient reaches the encoder, only the head learns."""

  config: ModelConfig
  head: str
  num_labels: int = 2
  freeze_encoder: bool = False

  def setup(self):
    if self.head not in HEAD_KINDS:
      raise ValueError(f"Unknown head {self.head!r}; valid: {', '.join(HEAD_KINDS)}.")
    self.encoder = Encoder(self.config)
    if self.head in ("classification", "regression"):
      activation = "gelu" if self.config.family == "electra" else "tanh"
      self.classifier = SequenceHead(self.config, 1 if self.head == "regression" else
                                     self.num_labels, activation)
    elif self.head == "span":
      self.qa = SpanHead(self.config)
    else:
      self.tagger = TokenHead(self.config, self.num_labels)

  def __call__(self, input_ids, attention_mask=None, token_type_ids=None,
               deterministic: bool = True, sequence_ids=None, pool_positions=None):
    """`sequence_ids` and `pool_positions` [B, K]: packed rows (bertlab/data/finetune_packing.py),
    each input classified at its own [CLS]; the sequence heads then return [B, K, ...]."""
    if pool_positions is not None and self.head not in ("classification", "regression"):
      raise ValueError(f"The {self.head} head takes one input per row, not pool_positions.")
    out = self.encoder(input_ids, attention_mask, token_type_ids, deterministic,
                       output_hidden_states=False, sequence_ids=sequence_ids,
                       pool_positions=pool_positions)
    sequence, pooled = out.last_hidden_state, out.pooled_output
    if self.freeze_encoder:
      sequence = jax.lax.stop_gradient(sequence)
      pooled = None if pooled is None else jax.lax.stop_gradient(pooled)
    if self.head in ("classification", "regression"):
      logits = self.classifier(sequence, pooled, deterministic, pool_positions)
      return logits[..., 0] if self.head == "regression" else logits
    if self.head == "span":
      return self.qa(sequence)
    return self.tagger(sequence, deterministic)

