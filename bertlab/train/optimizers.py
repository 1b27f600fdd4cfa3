"""Optimizers from the `train` config: AdamW (BERT) or LAMB (ALBERT), warmup then linear decay
or warmup-stable-decay, global-norm clipping and gradient accumulation, on optax's parts.

`train.optimizer`:
  * `adamw`: Adam with bias correction and decoupled weight decay (Loshchilov & Hutter);
  * `lamb`: LAMB (You et al., 2020) with the trust ratio ||w|| / ||update|| of each layer: a
    scanned tensor holds one stored copy per layer (or per group) along its leading axis, and
    each copy gets its own ratio, as if the layers were separate tensors;
  * `bert_adamw`: google-research/bert's AdamWeightDecayOptimizer: no bias correction;
  * `albert_lamb`: google-research/albert's LAMBOptimizer: no bias correction, and LayerNorm
    parameters and biases are left out of the layer adaptation (ratio 1) as they are of the
    weight decay.
Every variant decays no LayerNorm parameter and no bias (BERT's mask).
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bertlab.models.config import ModelConfig
from bertlab.models.encoder import SUBLAYERS, copy_of_layer

OPTIMIZERS = ("adamw", "lamb", "bert_adamw", "albert_lamb")


SCHEDULES = ("linear", "wsd")
DECAY_SHAPES = ("linear", "1-sqrt")


def stable_end_step(train) -> int | None:
  """The last step of a warmup-stable-decay schedule's stable phase (None for `linear`): its
  checkpoint is kept, to anneal from later (on another data mix, say) without the decay."""
  schedule = train.get("schedule", "linear")
  if schedule not in SCHEDULES:
    raise ValueError(f"Unknown train.schedule {schedule!r}; valid: {', '.join(SCHEDULES)}.")
  if schedule == "linear":
    return None
  shape = train.get("decay_shape", "linear")
  if shape not in DECAY_SHAPES:
    raise ValueError(f"Unknown train.decay_shape {shape!r}; valid: {', '.join(DECAY_SHAPES)}.")
  end = train.steps - int(round(train.decay_fraction * train.steps))
  if end < train.warmup_steps:
    raise ValueError(
        f"train.schedule='wsd': the decay (train.decay_fraction={train.decay_fraction} of "
        f"{train.steps} steps) starts at step {end}, before the warmup ends at "
        f"{train.warmup_steps}; lower one of them.")
  return end


def learning_rate_schedule(train) -> optax.Schedule:
  """`train.schedule`: `linear` (BERT, Appendix A.2): linear warmup to `learning_rate` over
  `warmup_steps`, then linear decay to 0 at `steps`. `wsd`, warmup-stable-decay (Hu et al.,
  2024; ModernBERT): the same warmup, the peak rate held, then a decay to 0 over the last
  `decay_fraction` of the steps, `linear` or `1-sqrt` (Hägele et al., 2024) by `decay_shape`."""
  peak = train.learning_rate
  warmup = optax.linear_schedule(0.0, peak, max(train.warmup_steps, 1))
  stable_end = stable_end_step(train)
  if stable_end is None:
    decay = optax.linear_schedule(peak, 0.0, max(train.steps - train.warmup_steps, 1))
    return optax.join_schedules([warmup, decay], [train.warmup_steps])
  length = max(train.steps - stable_end, 1)
  if train.get("decay_shape", "linear") == "linear":
    decay = optax.linear_schedule(peak, 0.0, length)
  else:
    decay = lambda count: peak * (1 - jnp.sqrt(jnp.clip(count / length, 0.0, 1.0)))
  return optax.join_schedules([warmup, optax.constant_schedule(peak), decay],
                              [train.warmup_steps, stable_end])


def _module_names(path) -> list[str]:
  # Dict keys name the modules; attribute keys (the `value` of a logical-axis box) do not.
  return [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]


def decays(path) -> bool:
  """BERT's weight-decay mask: no decay on norm parameters (LayerNorm, RMSNorm; modules named
  *LayerNorm* or *norm*) and on biases."""
  names = _module_names(path)
  return not (names[-1] == "bias" or any("norm" in n.lower() for n in names))


def stacked(path) -> bool:
  """Whether a parameter is a scanned layer stack (leading axis: one stored copy per layer
  or group; bertlab/models/encoder.py)."""
  names = _module_names(path)
  return any(a == "layers" and b == "block" for a, b in zip(names, names[1:]))


def _tree_mask(predicate: Callable) -> Callable:
  return lambda params: jax.tree_util.tree_map_with_path(lambda p, _: predicate(p), params)


class _MomentsState(NamedTuple):
  mu: optax.Updates
  nu: optax.Updates


def scale_by_adam_without_bias_correction(b1: float, b2: float,
                                          eps: float) -> optax.GradientTransformation:
  """m / (sqrt(v) + eps) with m, v the raw moving averages, as BERT's and ALBERT's released
  optimizers compute it (optax's scale_by_adam always corrects the bias)."""

  def init(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)
    return _MomentsState(zeros(), zeros())

  def update(updates, state, params=None):
    del params
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.nu, updates)
    return jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu), _MomentsState(mu, nu)

  return optax.GradientTransformation(init, update)


def scale_by_layerwise_trust_ratio(adapted: Callable | None = None
                                   ) -> optax.GradientTransformation:
  """LAMB's trust ratio ||w|| / ||u|| (1 where either norm is 0), per stored copy of a
  scanned tensor and per tensor elsewhere; `adapted(path)` False leaves an update unscaled."""

  def update(updates, state, params):
    def scale(path, u, w):
      if adapted is not None and not adapted(path):
        return u
      axes = tuple(range(1, u.ndim)) if stacked(path) and u.ndim > 1 else None
      norm = lambda x: jnp.sqrt(jnp.sum(jnp.square(x), axis=axes, keepdims=axes is not None))
      w_norm, u_norm = norm(w), norm(u)
      ratio = jnp.where((w_norm > 0) & (u_norm > 0), w_norm / jnp.where(u_norm > 0, u_norm, 1),
                        1.0)
      return u * ratio.astype(u.dtype)
    return jax.tree_util.tree_map_with_path(scale, updates, params), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def build_optimizer(train, extra: optax.GradientTransformation | None = None
                    ) -> optax.GradientTransformation:
  """`extra` runs after the optimizer on its updates (fine-tuning's per-layer factors)."""
  if train.optimizer not in OPTIMIZERS:
    raise ValueError(f"Unknown train.optimizer {train.optimizer!r}; valid: "
                     f"{', '.join(OPTIMIZERS)}.")
  b1, b2, eps = 0.9, train.get("b2", 0.999), 1e-6
  released = train.optimizer in ("bert_adamw", "albert_lamb")
  moments = (scale_by_adam_without_bias_correction(b1, b2, eps) if released
             else optax.scale_by_adam(b1, b2, eps))
  core = [moments, optax.add_decayed_weights(train.weight_decay, _tree_mask(decays))]
  if train.optimizer in ("lamb", "albert_lamb"):
    core.append(scale_by_layerwise_trust_ratio(decays if released else None))
  core.append(optax.scale_by_learning_rate(learning_rate_schedule(train)))
  # Nested as optax.adamw / optax.lamb nest theirs: checkpoints keep their optimizer layout.
  parts = ([optax.clip_by_global_norm(train.grad_clip)] if train.grad_clip else [])
  parts.append(optax.chain(*core))
  chain = optax.chain(*parts, *([extra] if extra is not None else []))
  if train.grad_accum_steps > 1:
    return optax.MultiSteps(chain, every_k_schedule=train.grad_accum_steps)
  return chain


def update_scales(params, config: ModelConfig, layer_decay: float, freeze_encoder: bool):
  """A factor per parameter (row of a layer stack) on its update: ELECTRA's layer-wise
  learning-rate decay (layer l of L gets decay^(L + 1 - l), embeddings decay^(L + 1), the
  head 1), and 0 on the encoder in the feature-based mode."""
  depth_of_head = config.num_layers + 1

  def scale(path, leaf):
    names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
    if names[0] != "encoder":
      return jnp.ones((), jnp.float32)
    if freeze_encoder:
      return jnp.zeros((), jnp.float32)
    if "layers" in names:
      sublayer = next((n for n in names if n in SUBLAYERS), None)
      if sublayer is None:
        depth = np.full(leaf.shape[0], config.num_layers)
      else:
        rows = copy_of_layer(config, sublayer)
        depth = np.array([rows.tolist().index(r) + np.sum(rows == r) for r in range(
            leaf.shape[0])])
      factors = layer_decay ** (depth_of_head - depth).astype(np.float32)
      return jnp.asarray(factors.reshape((-1,) + (1,) * (leaf.ndim - 1)), jnp.float32)
    depth = config.num_layers + 1 if names[1] == "pooler" else 0
    return jnp.asarray(layer_decay ** (depth_of_head - depth), jnp.float32)

  return jax.tree_util.tree_map_with_path(scale, params)


def scale_updates(scales) -> optax.GradientTransformation:
  return optax.GradientTransformation(
      lambda params: optax.EmptyState(),
      lambda updates, state, params=None: (jax.tree.map(lambda u, s: u * s, updates, scales),
                                           state))
