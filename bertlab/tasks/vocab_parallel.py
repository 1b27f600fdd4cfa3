"""Cross-entropy over a vocabulary sharded on the `tensor` mesh axis, written per device with
`shard_map` (Megatron's vocab-parallel loss).

Each device holds logits for its slice of the vocabulary. The softmax needs only three
all-reduces over `tensor`: the max (for stability), the sum of exponentials, and the target's
logit (held by one device, zero elsewhere); the argmax for accuracy is a max then a min over
the indices that reach it (the first, as jnp.argmax). Full-vocabulary logits never exist on
one device, and the per-device code says so.
"""

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

TENSOR = "tensor"
BATCH = ("data", "fsdp")


def applies(vocab_size: int) -> bool:
  """True under a mesh whose `tensor` axis splits the vocabulary evenly."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or TENSOR not in mesh.axis_names:
    return False
  size = mesh.shape[TENSOR]
  return size > 1 and vocab_size % size == 0


def _per_device(logits, targets, weights, batch_axes):
  """logits [b, p, V/t] (this device's vocabulary slice); targets, weights [b, p]."""
  logits = logits.astype(jnp.float32)
  width = logits.shape[-1]
  first = jax.lax.axis_index(TENSOR) * width
  top = jax.lax.pmax(jax.lax.stop_gradient(logits.max(-1)), TENSOR)
  total = jax.lax.psum(jnp.exp(logits - top[..., None]).sum(-1), TENSOR)
  local = targets - first
  mine = (local >= 0) & (local < width)
  picked = jnp.take_along_axis(logits, jnp.clip(local, 0, width - 1)[..., None], -1)[..., 0]
  target_logit = jax.lax.psum(jnp.where(mine, picked, 0.0), TENSOR)
  losses = jnp.log(total) + top - target_logit
  fixed = jax.lax.stop_gradient(logits)
  best = jax.lax.pmax(fixed.max(-1), TENSOR)
  index = jnp.where(fixed.max(-1) == best, fixed.argmax(-1) + first, jnp.iinfo(jnp.int32).max)
  predicted = jax.lax.pmin(index, TENSOR)
  correct = (predicted == targets).astype(jnp.float32)
  sums = jnp.stack([(losses * weights).sum(), (correct * weights).sum(), weights.sum()])
  return jax.lax.psum(sums, batch_axes) if batch_axes else sums


def weighted_cross_entropy(logits, targets, weights):
  """Mean cross-entropy over weighted targets and the argmax accuracy, as
  tasks.pretraining.weighted_cross_entropy, with the vocabulary split over `tensor`."""
  mesh = jax.sharding.get_abstract_mesh()
  batch = tuple(a for a in BATCH if a in mesh.axis_names)
  spec = P(batch, *([None] * (targets.ndim - 1)))
  sums = jax.shard_map(
      functools.partial(_per_device, batch_axes=batch), mesh=mesh, in_specs=(P(*spec, TENSOR), spec, spec), out_specs=P(),
      check_vma=False)(logits, targets, weights)
  total = jnp.maximum(sums[2], 1e-6)
  return sums[0] / total, sums[1] / total
