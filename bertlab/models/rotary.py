"""Rotary position embedding (Su et al., 2021, RoFormer): positions enter attention as rotations.

Query and key vectors are rotated by an angle proportional to their token's position, so their
dot product depends only on the offset between the two tokens. The layout is the "rotate half"
one of GPT-NeoX and ModernBERT (dimension i pairs with i + head_dim/2), so weights trained with
it match those implementations' checkpoints.
"""

import jax.numpy as jnp


def rotary_tables(positions: jnp.ndarray, head_dim: int, theta: float, dtype=jnp.float32):
  """Positions [B, T] -> (cos, sin), each [B, T, 1, head_dim], broadcasting over heads."""
  if head_dim % 2:
    raise ValueError(f"Rotary positions need an even head size; got head_dim={head_dim}.")
  rates = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  angles = positions.astype(jnp.float32)[..., None] * rates
  angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
  return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)


def rotate(x: jnp.ndarray, cos: jnp.ndarray, sin: jnp.ndarray) -> jnp.ndarray:
  """x [B, T, heads, head_dim] rotated by its positions' angles."""
  first, second = jnp.split(x, 2, axis=-1)
  return x * cos + jnp.concatenate([-second, first], axis=-1) * sin
