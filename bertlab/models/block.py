"""One Transformer layer: attention then feed-forward, post-norm (BERT, Section 3) or pre-norm.

The two sub-layers are separate modules, each with its residual and norm, because ALBERT shares
them independently across layers (`sharing`, ALBERT Table 4). Pre-norm keeps the attention's
input norm in a module of its own, `attention_norm`, so that ModernBERT's first layer can go
without one (the encoder stores no copy for it; `model.first_attention_norm`).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import dense_init, norm
from bertlab.models import splash
from bertlab.models.rotary import rotate


def activation(name: str):
  return {
      "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # exact erf GELU, as BERT
      "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),  # HF's "gelu_new" (ALBERT)
      "relu": jax.nn.relu,
      "silu": jax.nn.silu,  # SwiGLU's gate
  }[name]


class _FlatBox(nn.LogicallyPartitioned):
  """DenseGeneral makes kernel and bias flat, then reshapes them through the box (also when checking
  shapes in `apply`): constrain it to its logical names only once it has their rank."""

  def unbox(self, apply_constraint=True):
    return super().unbox(apply_constraint and jnp.ndim(self.value) == len(self.names))


def _logical_flat_init(init, names):
  return lambda *args, **kwargs: _FlatBox(init(*args, **kwargs), names)


def dense(config: ModelConfig, features, axes, name, axis=-1, use_bias: bool = True):
  """A Dense (or DenseGeneral) with logical axis names on kernel and bias."""
  bias_axes = axes[-1:] if isinstance(features, int) else axes[-len(features):]
  return nn.DenseGeneral(
      features, axis=axis, dtype=config.compute_dtype, param_dtype=config.weights_dtype,
      use_bias=use_bias, kernel_init=_logical_flat_init(dense_init(config), axes),
      bias_init=_logical_flat_init(nn.initializers.zeros, bias_axes), name=name)


class SelfAttention(nn.Module):
  """Multi-head self-attention, dropout and the residual; post-norm adds its LayerNorm.

  `rotary` is (cos, sin) of the tokens' positions when positions are rotary, else None.
  `normed` (pre-norm) is the normed input the projections read; the residual adds to `x`.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, x, attention_bias, rotary=None, deterministic: bool = True, normed=None,
               local=False):
    """`attention_bias`: additive [B, 1, 1 or T, T]; for splash the rows' segment ids [B, T],
    with `local` (this layer's flag) choosing the windowed kernel."""
    config = self.config
    h = x if normed is None else normed
    heads = (config.num_heads, config.head_dim)
    project = lambda name: dense(config, heads, ("embed", "heads", "kv"), name,
                                 use_bias=config.dense_bias)(h)
    query = checkpoint_name(project("query"), "query_proj")
    key = checkpoint_name(project("key"), "key_proj")
    value = checkpoint_name(project("value"), "value_proj")
    if rotary is not None:
      query, key = rotate(query, *rotary), rotate(key, *rotary)
    query = query / jnp.sqrt(config.head_dim).astype(query.dtype)
    if config.attention == "einsum":
      scores = jnp.einsum("bqhd,bkhd->bhqk", query, key).astype(jnp.float32)
      probs = jax.nn.softmax(scores + attention_bias, axis=-1).astype(config.compute_dtype)
      probs = nn.Dropout(config.attention_dropout_rate, name="attention_dropout")(
          probs, deterministic=deterministic)
      context = jnp.einsum("bhqk,bkhd->bqhd", probs, value)
    elif config.attention == "splash":
      window = config.local_attention_window if config.local_layers.any() else 0
      context = splash.splash_attention(query, key, value, attention_bias, local, window)
    else:
      # The same bias (padding, packed rows' blocks, the local window) as a boolean mask: the
      # fused kernels take a mask where an additive bias of -inf-like values would not fuse.
      context = jax.nn.dot_product_attention(
          query, key, value, mask=attention_bias >= 0, scale=1.0,
          implementation=config.attention)
    out = dense(config, config.hidden_size, ("heads", "kv", "embed"), "output",
                axis=(-2, -1), use_bias=config.dense_bias)(context)
    out = checkpoint_name(out, "attention_out")
    # Named, so that every path draws the same output dropout (the einsum path's attention
    # dropout would otherwise shift the automatic names and with them the random masks).
    out = nn.Dropout(config.dropout_rate, name="output_dropout")(out, deterministic=deterministic)
    if config.norm_position == "pre":
      return x + out
    return norm(config, "LayerNorm")(x + out)


class FeedForward(nn.Module):
  """Dense to intermediate_size, activation (or a gated linear unit), dense back, dropout and
  the residual; the norm ("LayerNorm") before it (pre-norm) or after the sum (post-norm)."""

  config: ModelConfig

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    config = self.config
    layer_norm = norm(config, "LayerNorm")
    h = layer_norm(x) if config.norm_position == "pre" else x
    act = activation(config.hidden_act)
    if config.feed_forward == "glu":
      # [.., 2, I]: the activated half, then the gate (ModernBERT's Wi, split in two).
      h = dense(config, (2, config.intermediate_size), ("embed", None, "mlp"), "intermediate",
                use_bias=config.dense_bias)(h)
      h = act(h[..., 0, :]) * h[..., 1, :]
    else:
      h = dense(config, config.intermediate_size, ("embed", "mlp"), "intermediate",
                use_bias=config.dense_bias)(h)
      h = act(h)
    h = checkpoint_name(h, "mlp_hidden")
    h = dense(config, config.hidden_size, ("mlp", "embed"), "output",
              use_bias=config.dense_bias)(h)
    h = nn.Dropout(config.dropout_rate)(h, deterministic=deterministic)
    return x + h if config.norm_position == "pre" else layer_norm(x + h)


def _per_layer(local, global_value, local_value):
  """This layer's value: the local one where it attends within the window."""
  if local_value is None:
    return global_value
  return jax.tree.map(lambda g, l: jnp.where(local, l, g), global_value, local_value)


class TransformerBlock(nn.Module):
  """One layer; returns `(x, x)` so a scan over it also yields every hidden state.

  `attention_bias` and `rotary` are (global, local) pairs (local None without sliding-window
  layers or a local rotary base); `layer` holds this layer's scanned flags: `local` and
  `attention_norm` (pre-norm: whether its attention input is normed).
  `deterministic` is an attribute, not an argument, so remat needs no static_argnums.
  """

  config: ModelConfig
  deterministic: bool = True
  return_hidden: bool = True

  @nn.compact
  def __call__(self, x, attention_bias, rotary, layer):
    config = self.config
    x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
    bias = _per_layer(layer["local"], *attention_bias)
    tables = None if rotary is None else _per_layer(layer["local"], *rotary)
    normed = None
    if config.norm_position == "pre":
      normed = norm(config, "attention_norm")(x)
      if not config.first_attention_norm:
        normed = jnp.where(layer["attention_norm"], normed, x)
    x = SelfAttention(config, name="attention")(x, bias, tables, self.deterministic, normed,
                                                layer["local"])
    x = FeedForward(config, name="ffn")(x, self.deterministic)
    return x, (x if self.return_hidden else None)
