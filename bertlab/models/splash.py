"""TPU splash attention (`model.attention="splash"`): Pallas' block-sparse flash kernel with
segment ids, so packed rows never attend across their sequences, and padding (segment 0)
never reaches a real token. Off a TPU the same kernel runs in Pallas' interpret mode (slow;
what the CPU tests check against the einsum path).

Global layers use a full mask and local layers (ModernBERT) a band of `window // 2` tokens
each side; in a scan over mixed layers the layer's flag picks one of the two kernels with a
`cond`, so each layer runs only its own. Under a device mesh the kernel runs per device
(shard_map) on its rows of the batch and its heads, placed as the logical axis rules place the
other attention activations (`batch`, `heads`).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as kernel_lib
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as mask_lib
from jax.sharding import PartitionSpec as P

BLOCKS = (512, 256, 128)  # the kernel's tiles are multiples of the TPU's 128 lanes


def block_size(seq_len: int) -> int:
  """The kernel's tile: the largest of 512, 256 and 128 tokens that divides the row."""
  for block in BLOCKS:
    if seq_len % block == 0:
      return block
  raise ValueError(f"model.attention='splash' tiles rows in blocks of 128 tokens, which do "
                   f"not divide data.seq_len={seq_len}: use a multiple of 128 (BERT's 128 "
                   "and 512 are), or model.attention='xla'.")


def _kernel(seq_len: int, heads: int, window: int, interpret: bool):
  """A kernel for this trace (not cached: it holds arrays of the trace that builds it)."""
  shape = (seq_len, seq_len)
  one = (mask_lib.LocalMask(shape, (window // 2, window // 2), offset=0) if window
         else mask_lib.FullMask(shape))
  b = block_size(seq_len)
  blocks = kernel_lib.BlockSizes(block_q=b, block_kv=b, block_kv_compute=b, block_q_dkv=b,
                                 block_kv_dkv=b, block_kv_dkv_compute=b, block_q_dq=b,
                                 block_kv_dq=b)
  return kernel_lib.make_splash_mha(mask_lib.MultiHeadMask([one] * heads), block_sizes=blocks,
                                    head_shards=1, q_seq_shards=1, interpret=interpret)


def _per_device(query, key, value, segments, local, window: int):
  """query/key/value [b, T, h, D] (scaled query), segments [b, T], local: a traced flag."""
  seq_len, heads = query.shape[1], query.shape[2]
  interpret = jax.devices()[0].platform != "tpu"
  to_heads_first = lambda x: jnp.swapaxes(x, 1, 2)  # [b, h, T, D]
  q, k, v = map(to_heads_first, (query, key, value))

  def run(window_size):
    kernel = _kernel(seq_len, heads, window_size, interpret)
    one_row = lambda q, k, v, s: kernel(q, k, v, segment_ids=kernel_lib.SegmentIds(q=s, kv=s))
    return jax.vmap(one_row)(q, k, v, segments)

  if window:
    out = jax.lax.cond(local, lambda: run(window), lambda: run(0))
  else:
    out = run(0)
  return jnp.swapaxes(out, 1, 2).astype(query.dtype)


def splash_attention(query, key, value, segments, local, window: int):
  """Attention within each row's segments: [B, T, H, D] -> [B, T, H, D]."""
  segments = segments.astype(jnp.int32)
  local = jnp.asarray(local)
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return _per_device(query, key, value, segments, local, window)
  qkv = nn.logical_to_mesh_axes(("batch", "length", "heads", "kv"))
  rows = nn.logical_to_mesh_axes(("batch", "length"))
  return jax.shard_map(functools.partial(_per_device, window=window), mesh=mesh,
                       in_specs=(qkv, qkv, qkv, rows, P()), out_specs=qkv,
                       check_vma=False)(query, key, value, segments, local)


def segment_ids(attention_mask, sequence_ids=None) -> jax.Array:
  """What the kernel separates: each packed sequence, or the real tokens from padding (0)."""
  if sequence_ids is not None:
    return jnp.where(attention_mask > 0, sequence_ids, 0)
  return (attention_mask > 0).astype(jnp.int32)

