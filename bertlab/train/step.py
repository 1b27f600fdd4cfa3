"""The one train step of pretraining and fine-tuning, and what they share about a run's
state: the train state, its abstract shapes and shardings, and the finiteness check, so both
loops log the same norms and learning rate and stop on a non-finite loss in the same way (the
step named, nothing saved, the last good checkpoint kept and named)."""

from typing import Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from bertlab.train import partitioning


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  opt_state: optax.OptState


def new_state(params, optimizer) -> TrainState:
  """Step 0 of a run: `params` and the optimizer's fresh state for them."""
  return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


class NonFiniteLoss(FloatingPointError):
  pass


def train_step(state: TrainState, batch: dict, *, loss_fn: Callable, optimizer, schedule,
               seed: int, grad_accum_steps: int = 1) -> tuple[TrainState, dict]:
  """One optimizer step: `loss_fn(params, batch, rng) -> (loss, metrics)` with the dropout
  key fold_in(seed, step), so a resumed run draws what an uninterrupted one would. The
  metrics gain the loss, the global norms of gradients, parameters and updates, and the
  learning rate of the step (of the accumulated step under gradient accumulation)."""
  rng = jax.random.fold_in(jax.random.key(seed), state.step)
  (loss, metrics), grads = jax.value_and_grad(lambda p: loss_fn(p, batch, rng),
                                              has_aux=True)(state.params)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = dict(metrics, loss=loss, grad_norm=optax.global_norm(grads),
                 param_norm=optax.global_norm(params), update_norm=optax.global_norm(updates),
                 learning_rate=schedule(state.step // grad_accum_steps))
  return TrainState(state.step + 1, params, opt_state), metrics


def abstract_state(make_boxed_state: Callable[[], TrainState], mesh, rules):
  """(shapes, shardings) of the state `make_boxed_state()` builds (with flax's logical-axis
  boxes), traced without computing it: what restoring a checkpoint and jit's
  `out_shardings` need. Traced without the mesh: flax's DenseGeneral reshapes a flat kernel
  through its logical box, whose constraint has the unflattened rank."""
  with nn.logical_axis_rules(rules):
    boxed = jax.eval_shape(make_boxed_state)
  return nn.unbox(boxed), partitioning.shardings_of(boxed, mesh, rules)


def check_finite(value: float, where: str, kept: str) -> None:
  """Raises NonFiniteLoss unless `value` is finite; `where` names the step, `kept` the last
  good checkpoint ("step 200", "epoch 2" or "none")."""
  if not np.isfinite(value):
    raise NonFiniteLoss(
        f"The loss is {value} at {where}. Stopped without saving; the last good checkpoint "
        f"is {kept}. Lower train.learning_rate or raise the warmup, then rerun to resume "
        "from it.")
