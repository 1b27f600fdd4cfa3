"""Optimizers from the `train` config: AdamW (BERT) or LAMB (ALBERT), warmup then linear decay,
global-norm clipping and gradient accumulation, all optax."""

import jax
import optax

OPTIMIZERS = ("adamw", "lamb")


def learning_rate_schedule(train) -> optax.Schedule:
  """Linear warmup to `learning_rate` over `warmup_steps`, then linear decay to 0 at `steps`
  (BERT, Appendix A.2)."""
  warmup = optax.linear_schedule(0.0, train.learning_rate, max(train.warmup_steps, 1))
  decay = optax.linear_schedule(train.learning_rate, 0.0,
                                max(train.steps - train.warmup_steps, 1))
  return optax.join_schedules([warmup, decay], [train.warmup_steps])


def decays(path) -> bool:
  """BERT's weight-decay mask: no decay on LayerNorm parameters and on biases."""
  # Dict keys name the modules; attribute keys (the `value` of a logical-axis box) do not.
  names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
  return not (names[-1] == "bias" or any(n.startswith("LayerNorm") for n in names))


def build_optimizer(train, extra: optax.GradientTransformation | None = None
                    ) -> optax.GradientTransformation:
  """`extra` runs after the optimizer on its updates (fine-tuning's per-layer factors)."""
  if train.optimizer not in OPTIMIZERS:
    raise ValueError(f"Unknown train.optimizer {train.optimizer!r}; valid: "
                     f"{', '.join(OPTIMIZERS)}.")
  schedule = learning_rate_schedule(train)
  mask = lambda params: jax.tree_util.tree_map_with_path(lambda p, _: decays(p), params)
  if train.optimizer == "adamw":
    core = optax.adamw(schedule, b1=0.9, b2=train.get("b2", 0.999), eps=1e-6, weight_decay=train.weight_decay,
                       mask=mask)
  else:
    core = optax.lamb(schedule, b1=0.9, b2=train.get("b2", 0.999), eps=1e-6, weight_decay=train.weight_decay,
                      mask=mask)
  parts = ([optax.clip_by_global_norm(train.grad_clip)] if train.grad_clip else []) + [core]
  chain = optax.chain(*parts, *([extra] if extra is not None else []))
  if train.grad_accum_steps > 1:
    return optax.MultiSteps(chain, every_k_schedule=train.grad_accum_steps)
  return chain
