"""Token + segment + position embeddings (BERT, Section 3), of width E.

With E != H (ALBERT's factorized embedding, ELECTRA-small) the encoder projects E -> H after
this module.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from bertlab.models.config import ModelConfig


def dense_init(config: ModelConfig):
  return nn.initializers.truncated_normal(stddev=config.initializer_range)


def norm(config: ModelConfig, name: str, axis_name: str = "embed") -> nn.Module:
  """The configured norm: LayerNorm (with or without bias) or RMSNorm (`model.norm_kind`)."""
  scale_init = nn.with_logical_partitioning(nn.initializers.ones, (axis_name,))
  common = dict(epsilon=config.layer_norm_eps, dtype=config.compute_dtype,
                param_dtype=config.weights_dtype, name=name, scale_init=scale_init)
  if config.norm_kind == "rms_norm":
    return nn.RMSNorm(**common)
  return nn.LayerNorm(
      use_bias=config.norm_bias,
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axis_name,)), **common)


def sinusoidal_positions(length: int, width: int) -> np.ndarray:
  """The fixed encoding of Vaswani et al. (2017), Section 3.5: sin on even, cos on odd dims."""
  positions = np.arange(length)[:, None]
  rates = 1.0 / np.power(10000.0, np.arange(0, width, 2) / width)
  table = np.zeros((length, width), np.float32)
  table[:, 0::2] = np.sin(positions * rates)
  table[:, 1::2] = np.cos(positions * rates[: width // 2])
  return table


def position_ids(config: ModelConfig, input_ids: jnp.ndarray,
                 sequence_ids: jnp.ndarray | None = None) -> jnp.ndarray:
  """0..T-1; or, for RoBERTa, pad+1.. over real tokens and pad on padding (as fairseq does).

  In a packed row (`sequence_ids`, see Encoder) every sequence counts again from its start.
  """
  index = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
  if sequence_ids is not None:
    changed = sequence_ids != jnp.pad(sequence_ids[:, :-1], ((0, 0), (1, 0)))
    index = index - jax.lax.cummax(jnp.where(changed, index, 0), axis=1)
  if config.positions_from_padding:
    if sequence_ids is None:
      real = (input_ids != config.pad_token_id).astype(jnp.int32)
      return jnp.cumsum(real, axis=1) * real + config.pad_token_id
    return jnp.where(sequence_ids > 0, index + 1 + config.pad_token_id, config.pad_token_id)
  return index


def longest_position(config: ModelConfig, seq_len: int) -> int:
  """The largest position id a sequence of `seq_len` tokens uses (RoBERTa's start after pad)."""
  return seq_len + config.pad_token_id if config.positions_from_padding else seq_len - 1


def longest_sequence(config: ModelConfig) -> int:
  """The most tokens a sequence may have: the inverse of `longest_position`."""
  offset = config.pad_token_id + 1 if config.positions_from_padding else 0
  return config.max_position_embeddings - offset


def check_sequence_length(config: ModelConfig, seq_len: int, where: str = "data.seq_len"):
  """Tokens past the position table would look up nothing (NaN or garbage): refuse them."""
  if config.position_embedding == "rotary":
    return
  last = longest_position(config, seq_len)
  if last >= config.max_position_embeddings:
    raise ValueError(
        f"{where}={seq_len} needs position {last}, but model.max_position_embeddings is "
        f"{config.max_position_embeddings}. Shorten {where} to at most "
        f"{longest_sequence(config)} or raise "
        "model.max_position_embeddings.")


class Embeddings(nn.Module):
  """Sum of word, position and token-type embeddings, then LayerNorm and dropout.

  With `residual_of` (another Embeddings), each table is stop_gradient(that one's) plus a
  residual table of this module's own, initialised at zero: DeBERTa-v3's gradient-disentangled
  embedding sharing (GDES) for ELECTRA's discriminator, whose replaced-token loss then moves
  only the residual, never the generator's tables. The LayerNorm stays this module's own.
  """

  config: ModelConfig
  residual_of: Any = None

  def setup(self):
    config = self.config
    init = nn.initializers.zeros if self.residual_of is not None else dense_init(config)
    embed = lambda num, name, rows: nn.Embed(
        num, config.embed_size, dtype=config.compute_dtype,
        param_dtype=config.weights_dtype, name=name,
        embedding_init=nn.with_logical_partitioning(init, (rows, "embed")))
    self.word_embeddings = embed(config.vocab_size, "word_embeddings", "vocab")
    if config.position_embedding == "learned":
      self.position_embeddings = embed(
          config.max_position_embeddings, "position_embeddings", None)
    if config.type_vocab_size:
      self.token_type_embeddings = embed(config.type_vocab_size, "token_type_embeddings", None)
    self.norm = norm(config, "LayerNorm")
    self.dropout = nn.Dropout(config.dropout_rate)

  def __call__(self, input_ids, token_type_ids=None, deterministic: bool = True,
               sequence_ids=None):
    config = self.config
    check_sequence_length(config, input_ids.shape[1], "the input length")
    x = self._lookup("word_embeddings", input_ids)
    positions = position_ids(config, input_ids, sequence_ids)  # rotary: used in attention
    if config.position_embedding == "learned":
      x = x + self._lookup("position_embeddings", positions)
    elif config.position_embedding == "sinusoidal":
      table = sinusoidal_positions(config.max_position_embeddings, config.embed_size)
      x = x + jnp.asarray(table, config.compute_dtype)[positions]
    if config.type_vocab_size:
      if token_type_ids is None:
        token_type_ids = jnp.zeros_like(input_ids)
      x = x + self._lookup("token_type_embeddings", token_type_ids)
    x = self.norm(x)
    return self.dropout(x, deterministic=deterministic)

  def table(self, name: str) -> jax.Array:
    """The table `name` as this module uses it (GDES: the shared one, frozen, plus its own)."""
    own = getattr(self, name).embedding
    if self.residual_of is None:
      return own
    return jax.lax.stop_gradient(self.residual_of.table(name)) + own

  def _lookup(self, name: str, ids):
    if self.residual_of is None:
      return getattr(self, name)(ids)
    return jnp.take(self.table(name), ids, axis=0).astype(self.config.compute_dtype)

  def attend(self, x):
    """Logits against the word embeddings: the tied MLM decoder (in E space)."""
    if self.residual_of is None:
      return self.word_embeddings.attend(x)
    table = self.table("word_embeddings").astype(self.config.compute_dtype)
    return jnp.dot(x, table.T)
