"""Pretraining models: the one encoder plus the heads its family trains with.

`PretrainingModel` covers BERT (mlm + sentence=NSP), ALBERT (mlm + sentence=SOP), RoBERTa
(mlm), SpanBERT (mlm + sbo) and each half of ELECTRA on its own (generator: mlm;
discriminator: rtd). `ElectraModel` joins a generator and a discriminator that share their
embeddings, nothing, or the whole encoder (ELECTRA, Section 3.2, weight sharing).
"""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import Embeddings
from bertlab.models.encoder import Encoder, gather_positions
from bertlab.models.heads import MLMHead, ReplacedTokenHead, SentenceHead, SpanBoundaryHead


@flax.struct.dataclass
class PretrainingOutput:
  last_hidden_state: jax.Array
  pooled_output: jax.Array | None = None
  hidden_states: tuple[jax.Array, ...] | None = None
  mlm_logits: jax.Array | None = None  # [B, T or P, vocab]
  sentence_logits: jax.Array | None = None  # [B, 2], or [B, K, 2] for packed pairs
  rtd_logits: jax.Array | None = None  # [B, T]
  sbo_logits: jax.Array | None = None  # [B, S, max_span_length, vocab] or [B, S, vocab]


class PretrainingModel(nn.Module):
  """The encoder with the heads named in `config.heads`."""

  config: ModelConfig
  shared_embeddings: nn.Module | None = None
  shared_encoder: nn.Module | None = None  # ELECTRA with every weight tied

  def setup(self):
    config = self.config
    if "sentence" in config.heads and not config.use_pooler:
      raise ValueError("model.heads has 'sentence' (NSP/SOP), which reads the pooled output, "
                       "but model.use_pooler is False; set use_pooler=True.")
    self.encoder = self.shared_encoder or Encoder(config, self.shared_embeddings)
    if "mlm" in config.heads:
      self.mlm = MLMHead(config)
    if "sentence" in config.heads:
      self.sentence = SentenceHead(config)
    if "rtd" in config.heads:
      self.rtd = ReplacedTokenHead(config)
    if "sbo" in config.heads:
      self.sbo = SpanBoundaryHead(config)

  def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *,
               masked_positions=None, span_bounds=None, span_slots=None, sequence_ids=None,
               sentence_positions=None, deterministic: bool = True,
               output_hidden_states: bool = True) -> PretrainingOutput:
    """`masked_positions` [B, P] restricts MLM logits to those positions (all when None);
    `span_bounds` [B, S, 2] are the SBO boundary positions (required with the sbo head), with
    `span_slots` [B, S] when each row is one masked token (see SpanBoundaryHead);
    `sequence_ids` [B, T] for packed rows (see Encoder), with `sentence_positions` [B, K] for
    packed pairs: the [CLS] of each, whose NSP/SOP logits are then [B, K, 2]."""
    config = self.config
    out = self.encoder(input_ids, attention_mask, token_type_ids, deterministic,
                       output_hidden_states, sequence_ids, sentence_positions)
    sequence = out.last_hidden_state
    heads = {}
    if "mlm" in config.heads:
      selected = sequence if masked_positions is None else gather_positions(
          sequence, masked_positions)
      heads["mlm_logits"] = self.mlm(selected, self.encoder.attend)
    if "sentence" in config.heads:
      heads["sentence_logits"] = self.sentence(out.pooled_output)
    if "rtd" in config.heads:
      heads["rtd_logits"] = self.rtd(sequence)
    if "sbo" in config.heads:
      if span_bounds is None:
        if not self.is_initializing():
          raise ValueError("The sbo head needs span_bounds [batch, spans, 2]: the positions "
                           "just before and just after each masked span.")
        span_bounds = jnp.zeros((input_ids.shape[0], 1, 2), jnp.int32)
      heads["sbo_logits"] = self.sbo(sequence, span_bounds, self.encoder.attend, span_slots)
    return PretrainingOutput(out.last_hidden_state, out.pooled_output, out.hidden_states,
                             **heads)


TIE_CHOICES = ("none", "embeddings", "gdes", "all")


class ElectraModel(nn.Module):
  """ELECTRA's generator (mlm) and discriminator (rtd).

  `tie` (ELECTRA Section 3.2): `embeddings` shares the token and position embeddings (the
  paper's choice, stored once at the top); `none` gives each its own; `all` shares the whole
  encoder, which needs a generator of the discriminator's size, leaving only the heads apart;
  `gdes` (DeBERTa-v3) gives the discriminator the generator's tables behind a stop-gradient
  plus residual tables of its own (`discriminator_embeddings`, zero at init), so only the
  generator's MLM loss trains the shared tables.
  The sampling of replacements between the two belongs to the ELECTRA objective; this module
  gives the two forward passes.
  """

  generator_config: ModelConfig
  discriminator_config: ModelConfig
  tie: str = "embeddings"

  def setup(self):
    gen, disc = self.generator_config, self.discriminator_config
    if self.tie not in TIE_CHOICES:
      raise ValueError(f"Unknown electra.tie_embeddings {self.tie!r}; valid: "
                       f"{', '.join(TIE_CHOICES)}.")
    if self.tie == "none":
      self.generator = PretrainingModel(gen)
      self.discriminator = PretrainingModel(disc)
      return
    if gen.embed_size != disc.embed_size:
      raise ValueError(
          f"ELECTRA's generator and discriminator share embeddings, so their embedding_size "
          f"must agree: {gen.embed_size} != {disc.embed_size}.")
    if self.tie == "all":
      if gen.hidden_size != disc.hidden_size:
        raise ValueError(
            f"electra.tie_embeddings='all' shares every encoder weight, so the generator must "
            f"be the discriminator's size ({disc.hidden_size}), not {gen.hidden_size}: set "
            "electra.generator_hidden_size=1.0, or tie only the embeddings.")
      self.encoder = Encoder(disc)
      self.generator = PretrainingModel(disc.replace(heads=("mlm",), use_pooler=False),
                                        shared_encoder=self.encoder)
      self.discriminator = PretrainingModel(disc, shared_encoder=self.encoder)
      return
    self.embeddings = Embeddings(disc)
    self.generator = PretrainingModel(gen, self.embeddings)
    if self.tie == "gdes":
      self.discriminator_embeddings = Embeddings(disc, residual_of=self.embeddings)
      self.discriminator = PretrainingModel(disc, self.discriminator_embeddings)
      return
    self.discriminator = PretrainingModel(disc, self.embeddings)

  def generate(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
    return self.generator(input_ids, attention_mask, token_type_ids, **kwargs)

  def discriminate(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
    return self.discriminator(input_ids, attention_mask, token_type_ids, **kwargs)

  def __call__(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
    """Both passes on the same input: for `init` and shape inspection."""
    return (self.generate(input_ids, attention_mask, token_type_ids, **kwargs),
            self.discriminate(input_ids, attention_mask, token_type_ids, **kwargs))
