"""What pretraining and fine-tuning share about a run's state: the train state itself and
the one finiteness check, so both loops stop on a non-finite loss in the same way (the step
named, nothing saved, the last good checkpoint kept and named)."""

import flax
import jax
import numpy as np
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  opt_state: optax.OptState


class NonFiniteLoss(FloatingPointError):
  pass


def check_finite(value: float, where: str, kept: str) -> None:
  """Raises NonFiniteLoss unless `value` is finite; `where` names the step, `kept` the last
  good checkpoint ("step 200", "epoch 2" or "none")."""
  if not np.isfinite(value):
    raise NonFiniteLoss(
        f"The loss is {value} at {where}. Stopped without saving; the last good checkpoint "
        f"is {kept}. Lower train.learning_rate or raise the warmup, then rerun to resume "
        "from it.")
