"""One post-LN Transformer layer (BERT, Section 3): attention then feed-forward.

The two sub-layers are separate modules, each with its residual and LayerNorm, because
ALBERT shares them independently across layers (`sharing`, ALBERT Table 4).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import dense_init, layer_norm
from bertlab.models.rotary import rotate


def activation(name: str):
  return {
      "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # exact erf GELU, as BERT
      "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),  # HF's "gelu_new" (ALBERT)
      "relu": jax.nn.relu,
  }[name]


class _FlatBox(nn.LogicallyPartitioned):
  """DenseGeneral makes kernel and bias flat, then reshapes them through the box (also when checking
  shapes in `apply`): constrain it to its logical names only once it has their rank."""

  def unbox(self, apply_constraint=True):
    return super().unbox(apply_constraint and jnp.ndim(self.value) == len(self.names))


def _logical_flat_init(init, names):
  return lambda *args, **kwargs: _FlatBox(init(*args, **kwargs), names)


def dense(config: ModelConfig, features, axes, name, axis=-1):
  """A Dense (or DenseGeneral) with logical axis names on kernel and bias."""
  bias_axes = axes[-1:] if isinstance(features, int) else axes[-len(features):]
  return nn.DenseGeneral(
      features, axis=axis, dtype=config.compute_dtype, param_dtype=config.weights_dtype,
      kernel_init=_logical_flat_init(dense_init(config), axes),
      bias_init=_logical_flat_init(nn.initializers.zeros, bias_axes), name=name)


class SelfAttention(nn.Module):
  """Multi-head self-attention, dropout, residual and LayerNorm.

  `rotary` is (cos, sin) of the tokens' positions when positions are rotary, else None.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, x, attention_bias, rotary=None, deterministic: bool = True):
    config = self.config
    heads = (config.num_heads, config.head_dim)
    project = lambda name: dense(config, heads, ("embed", "heads", "kv"), name)(x)
    query = checkpoint_name(project("query"), "query_proj")
    key = checkpoint_name(project("key"), "key_proj")
    value = checkpoint_name(project("value"), "value_proj")
    if rotary is not None:
      query, key = rotate(query, *rotary), rotate(key, *rotary)
    query = query / jnp.sqrt(config.head_dim).astype(query.dtype)
    scores = jnp.einsum("bqhd,bkhd->bhqk", query, key).astype(jnp.float32)
    probs = jax.nn.softmax(scores + attention_bias, axis=-1).astype(config.compute_dtype)
    probs = nn.Dropout(config.attention_dropout_rate)(probs, deterministic=deterministic)
    context = jnp.einsum("bhqk,bkhd->bqhd", probs, value)
    out = dense(config, config.hidden_size, ("heads", "kv", "embed"), "output",
                axis=(-2, -1))(context)
    out = checkpoint_name(out, "attention_out")
    out = nn.Dropout(config.dropout_rate)(out, deterministic=deterministic)
    return layer_norm(config, "LayerNorm")(x + out)


class FeedForward(nn.Module):
  """Dense to intermediate_size, activation, dense back, dropout, residual and LayerNorm."""

  config: ModelConfig

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    config = self.config
    h = dense(config, config.intermediate_size, ("embed", "mlp"), "intermediate")(x)
    h = checkpoint_name(activation(config.hidden_act)(h), "mlp_hidden")
    h = dense(config, config.hidden_size, ("mlp", "embed"), "output")(h)
    h = nn.Dropout(config.dropout_rate)(h, deterministic=deterministic)
    return layer_norm(config, "LayerNorm")(x + h)


class TransformerBlock(nn.Module):
  """One layer; returns `(x, x)` so a scan over it also yields every hidden state.

  `deterministic` is an attribute, not an argument, so remat needs no static_argnums.
  """

  config: ModelConfig
  deterministic: bool = True
  return_hidden: bool = True

  @nn.compact
  def __call__(self, x, attention_bias, rotary=None):
    x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
    x = SelfAttention(self.config, name="attention")(x, attention_bias, rotary,
                                                     self.deterministic)
    x = FeedForward(self.config, name="ffn")(x, self.deterministic)
    return x, (x if self.return_hidden else None)
