"""Output heads: pretraining (MLM, NSP/SOP, ELECTRA's RTD, SpanBERT's SBO) and fine-tuning."""

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from bertlab.models.block import activation, dense
from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import norm
from bertlab.models.encoder import gather_positions


class MLMHead(nn.Module):
  """Dense H -> E, activation, LayerNorm, then the word embeddings (tied) plus a bias.

  With E < H (ALBERT, ELECTRA's generator) the transform maps into E, so the tied decoder
  is the E-wide embedding table itself.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, x, decode: Callable):
    config = self.config
    x = dense(config, config.embed_size, ("embed", None), "transform",
              use_bias=config.dense_bias)(x)
    x = activation(config.head_act or config.hidden_act)(x)
    x = norm(config, "LayerNorm", axis_name=None)(x)
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)),
                      (config.vocab_size,), config.weights_dtype)
    return decode(x) + bias.astype(config.compute_dtype)


class SentenceHead(nn.Module):
  """Two-way classifier on the pooled output: IsNext for NSP (BERT), in-order for SOP (ALBERT)."""

  config: ModelConfig

  @nn.compact
  def __call__(self, pooled):
    return dense(self.config, 2, ("embed", None), "classifier")(pooled)


class ReplacedTokenHead(nn.Module):
  """ELECTRA's discriminator: dense, activation, dense to one logit per token ("replaced")."""

  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    config = self.config
    x = dense(config, config.hidden_size, ("embed", None), "dense")(x)
    x = activation(config.hidden_act)(x)
    return dense(config, 1, (None, None), "prediction")(x)[..., 0]


class SpanBoundaryHead(nn.Module):
  """SpanBERT's SBO (Section 3.2): predict each token of a span from the two tokens just
  outside it and its relative position, through a two-layer GELU + LayerNorm network and the
  tied word embeddings.

  `span_bounds` [B, S, 2] holds the positions of the tokens before and after each span; the
  output is [B, S, max_span_length, vocab]: logits for the span's i-th token in slot i. With
  `span_slots` [B, S] each row is one masked token (its span's bounds, its slot in the span)
  and the output is [B, S, vocab], as SpanBERT trains it: one prediction per masked token.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, x, span_bounds, decode: Callable, span_slots=None):
    config = self.config
    gather = lambda idx: jnp.take_along_axis(x, idx[..., None], axis=1)  # [B, S, H]
    left, right = gather(span_bounds[..., 0]), gather(span_bounds[..., 1])
    positions = nn.Embed(
        config.max_span_length, config.hidden_size, dtype=config.compute_dtype,
        param_dtype=config.weights_dtype, name="position_embeddings",
        embedding_init=nn.with_logical_partitioning(
            nn.initializers.normal(config.initializer_range), (None, "embed")))(
                jnp.arange(config.max_span_length))
    batch, spans, width = left.shape
    if span_slots is not None:
      slot = jnp.take(positions, jnp.clip(span_slots, 0, config.max_span_length - 1), axis=0)
      h = jnp.concatenate([left, right, slot], axis=-1)
    else:
      slots = config.max_span_length
      pair = jnp.concatenate([left, right], axis=-1)[:, :, None, :]
      h = jnp.concatenate([
          jnp.broadcast_to(pair, (batch, spans, slots, 2 * width)),
          jnp.broadcast_to(positions, (batch, spans, slots, width)),
      ], axis=-1)
    gelu = activation("gelu")
    h = norm(config, "LayerNorm_0")(gelu(dense(config, width, (None, "embed"), "dense_0")(h)))
    h = dense(config, config.embed_size, ("embed", None), "dense_1")(h)
    h = norm(config, "LayerNorm_1", axis_name=None)(gelu(h))
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)),
                      (config.vocab_size,), config.weights_dtype)
    return decode(h) + bias.astype(config.compute_dtype)


class SequenceHead(nn.Module):
  """Sequence classification (num_labels > 1) or regression (num_labels = 1, STS-B).

  On the pooled output where the encoder has a pooler (BERT, ALBERT); otherwise on the first
  token through dense + activation (RoBERTa: tanh, ELECTRA: GELU), as those papers do.
  """

  config: ModelConfig
  num_labels: int
  hidden_activation: str = "tanh"

  @nn.compact
  def __call__(self, sequence, pooled=None, deterministic: bool = True, pool_positions=None):
    """`pool_positions` [B, K]: the [CLS] of each packed input, read where there is no pooler."""
    config = self.config
    drop = lambda h: nn.Dropout(config.dropout_rate)(h, deterministic=deterministic)
    if pooled is None:
      first = (sequence[:, 0] if pool_positions is None
               else gather_positions(sequence, pool_positions))
      h = dense(config, config.hidden_size, ("embed", None), "dense")(drop(first))
      pooled = jnp.tanh(h) if self.hidden_activation == "tanh" else activation("gelu")(h)
    return dense(config, self.num_labels, ("embed", None), "classifier")(drop(pooled))


class SpanHead(nn.Module):
  """SQuAD: start and end logits per token."""

  config: ModelConfig

  @nn.compact
  def __call__(self, sequence):
    logits = dense(self.config, 2, ("embed", None), "qa_outputs")(sequence)
    return logits[..., 0], logits[..., 1]


class TokenHead(nn.Module):
  """NER: a label distribution per token."""

  config: ModelConfig
  num_labels: int

  @nn.compact
  def __call__(self, sequence, deterministic: bool = True):
    sequence = nn.Dropout(self.config.dropout_rate)(sequence, deterministic=deterministic)
    return dense(self.config, self.num_labels, ("embed", None), "classifier")(sequence)
